#!/usr/bin/env bash
# Proves the README's two commands on a truly fresh Debian 12 (bookworm):
#   1. debootstraps a minimal (minbase) bookworm root from the host's mirror, or extracts the
#      cached result of an earlier debootstrap (taken before anything touched that root),
#   2. copies the project's tracked files into /root/src/framesmith there (no build/),
#   3. runs ./tools/run-demo.sh inside it (no display: the CLI job; its MP4 must exist),
#   4. then ./tools/run-tests.sh.
# Every package inside the root is installed by the project's own set-up (tools/setup.sh, called
# by both commands), never by this script: what a fresh system lacks is a bug of the set-up.
#
# usage: tools/check-fresh-debian.sh [--keep-root] [--untracked | --committed] [--logs DIR]
#   --keep-root   leave the root (and its build/) in place for a look afterwards
#   --untracked   also copy untracked files that git does not ignore (a working tree not yet
#                 committed); by default only what `git ls-files` lists, as a clean clone has
#   --committed   copy HEAD's files (git archive HEAD) instead of the working tree's
#   --logs DIR    where the logs go; default a new /var/tmp/framesmith-fresh-logs.XXXXXX
# Environment:
#   FRAMESMITH_DEBIAN_MIRROR           default http://deb.debian.org/debian
#   FRAMESMITH_DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
#   FRAMESMITH_FRESH_ROOT_CACHE        the debootstrapped base as a tarball; default
#       /var/tmp/framesmith-ci-cache/bookworm-minbase.tar.zst (.tar without zstd), "" for none
#   FRAMESMITH_FRESH_APT_CACHE         apt's downloaded .debs, bind-mounted at the root's
#       /var/cache/apt/archives; default /var/tmp/framesmith-ci-cache/archives, "" for none
# Both caches must lie outside the project. Exit status: 0 passed, 1 failed, 2 bad usage.
# Must run as root (debootstrap, chroot, mount).
set -euo pipefail

keep_root=0 untracked=0 committed=0 logs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-root) keep_root=1; shift ;;
    --untracked) untracked=1; shift ;;
    --committed) committed=1; shift ;;
    --logs) logs=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

project=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
mirror=${FRAMESMITH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FRAMESMITH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache_dir=/var/tmp/framesmith-ci-cache
if command -v zstd >/dev/null; then default_tar=$cache_dir/$suite-minbase.tar.zst
else default_tar=$cache_dir/$suite-minbase.tar; fi
base_tar=${FRAMESMITH_FRESH_ROOT_CACHE-$default_tar}
apt_cache=${FRAMESMITH_FRESH_APT_CACHE-$cache_dir/archives}
src=/root/src/framesmith  # the project's place inside the root
t0=$(date +%s)
timings=()

say() { echo "== fresh-root [$(($(date +%s) - t0))s]: $*"; }
fail() { echo "FAILED (fresh-root): $*" >&2; exit 1; }
timing() {  # $1 part, $2 its start time
  local line
  line="== fresh-root: $1 $(($(date +%s) - $2)) s"
  timings+=("$line")
  echo "$line"
}
outside_project() {  # a cache inside the clone would be copied or cleaned with it
  case "$(readlink -m "$1")/" in "$project"/*) fail "$2 ($1) lies inside the project" ;; esac
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (debootstrap, chroot, mount)"
if ! command -v debootstrap >/dev/null; then
  echo "== debootstrap is missing on the host: apt-get install -y debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
fi
for tool in debootstrap chroot mount git tar; do
  command -v "$tool" >/dev/null || fail "$tool is not installed on the host"
done
[ -z "$base_tar" ] || outside_project "$base_tar" "FRAMESMITH_FRESH_ROOT_CACHE"
[ -z "$apt_cache" ] || outside_project "$apt_cache" "FRAMESMITH_FRESH_APT_CACHE"
case "$base_tar" in
  *.zst) command -v zstd >/dev/null || fail "zstd is needed for $base_tar" ;;
esac

# --- the work area and the trap that always cleans it up ------------------------------------
work=$(mktemp -d /var/tmp/framesmith-fresh-root.XXXXXX)
root=$work/root
mkdir -p "$root"
if [ -z "$logs" ]; then logs=$(mktemp -d /var/tmp/framesmith-fresh-logs.XXXXXX); fi
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
echo "== fresh-root: root in $root, logs in $logs"
mounted_below() { awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r; }
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  # Whatever still runs inside the root (a build, a test) would keep its mounts busy.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -TERM "$pid" 2>/dev/null
  done
  # Unmount everything below the root, deepest first, before anything is deleted.
  for m in $(mounted_below); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if [ "$keep_root" -eq 1 ]; then
    echo "== fresh-root: root kept at $root"
  elif [ -n "$(mounted_below)" ]; then
    echo "== fresh-root: not deleting $root: something is still mounted below it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "== fresh-root: interrupted" >&2; exit 130' INT
trap 'echo "== fresh-root: terminated" >&2; exit 143' TERM HUP

# --- 1. a fresh bookworm root ---------------------------------------------------------------
start=$(date +%s)
if [ -n "$base_tar" ] && [ -f "$base_tar" ]; then
  say "extracting the cached debootstrap result $base_tar"
  case "$base_tar" in
    *.zst) zstd -dc -T0 "$base_tar" | tar -C "$root" --numeric-owner -xpf - ;;
    *) tar -C "$root" --numeric-owner -xpf "$base_tar" ;;
  esac
  timing "extract cached base" "$start"
else
  say "debootstrap --variant=minbase $suite $mirror (minutes)"
  deb_cache=()
  if [ -n "$apt_cache" ]; then
    mkdir -p "$apt_cache/debootstrap"
    deb_cache=(--cache-dir="$(readlink -f "$apt_cache/debootstrap")")
  fi
  debootstrap --variant=minbase "${deb_cache[@]}" "$suite" "$root" "$mirror" \
    >"$logs/debootstrap.log" 2>&1 ||
    { tail -30 "$logs/debootstrap.log"; fail "debootstrap (see $logs/debootstrap.log)"; }
  timing debootstrap "$start"
  if [ -n "$base_tar" ]; then
    # Right after debootstrap, before anything else touches the root.
    start=$(date +%s)
    mkdir -p "$(dirname "$base_tar")"
    case "$base_tar" in
      *.zst) tar -C "$root" --numeric-owner -cpf - . | zstd -q -T0 -3 -o "$base_tar.tmp" -f ;;
      *) tar -C "$root" --numeric-owner -cpf "$base_tar.tmp" . ;;
    esac
    mv "$base_tar.tmp" "$base_tar"
    timing "cache base ($base_tar, $(du -h "$base_tar" | cut -f1))" "$start"
  fi
fi
chmod 755 "$root"  # "/" for apt's _apt user; mktemp made it 0700

# apt's sources as the host has them: the suite, its updates, the security archive.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Snapshot mirrors serve Release files past their Valid-Until date; follow the host's choice.
if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99no-valid-until"
fi
# Keep the .debs apt downloads in the (bind-mounted) cache for the next run.
if [ -n "$apt_cache" ]; then
  echo 'APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/99keep-debs"
  rm -f "$root/etc/apt/apt.conf.d/docker-clean"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
missing_nodes=0
for d in null zero full random urandom tty; do
  [ -c "$root/dev/$d" ] || missing_nodes=1
done
if [ "$missing_nodes" -eq 1 ]; then  # debootstrap in a container may not create device nodes
  mount --bind /dev "$root/dev"
fi
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
if [ -n "$apt_cache" ]; then
  mkdir -p "$apt_cache/partial"
  mount --bind "$apt_cache" "$root/var/cache/apt/archives"
fi

# --- 2. the project ------------------------------------------------------------------------
start=$(date +%s)
mkdir -p "$root$src"
ls_args=(--cached)
[ "$untracked" -eq 0 ] || ls_args+=(--others --exclude-standard)
# Files deleted in the working tree but still tracked are left out; build/ is never copied.
if [ "$committed" -eq 1 ]; then
  git -C "$project" archive --format=tar HEAD | tar -C "$root$src" -xpf -
  echo "HEAD: $(git -C "$project" log -1 --format='%h %s')"
else (cd "$project" && git ls-files -z "${ls_args[@]}" |
  while IFS= read -r -d '' f; do
    case "$f" in build/* | build-*/*) continue ;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
  done | tar --null -T - -cf -) | tar -C "$root$src" -xpf -
fi
echo "copied $(find "$root$src" -type f | wc -l) files to $src"
# The tests may read the shared data beside the project (../shared); copy it when they do.
if (cd "$project" && git grep -qE '\.\./shared|FRAMESMITH_SHARED' -- tests CMakeLists.txt cmake \
      tools/run-tests.sh 2>/dev/null); then
  [ -d "$project/../shared" ] || fail "the tests use ../shared, but $project/../shared is missing"
  cp -a "$project/../shared" "$root$(dirname "$src")/shared"
  echo "copied ../shared beside the project ($(du -sh "$root$(dirname "$src")/shared" | cut -f1))"
fi
timing "copy project" "$start"

# Everything inside runs with a clean environment, as root (the root has no sudo).
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI=true bash -lc "cd $src && $1" </dev/null
}

# --- 3. the main job -----------------------------------------------------------------------
say "./tools/run-demo.sh (no display: the CLI job)"
start=$(date +%s)
demo_rc=0
# In the background and waited for, so that a signal's trap runs at once (and stops the job).
{ in_root ./tools/run-demo.sh 2>&1 | tee "$logs/run-demo.log"; } &
wait $! || demo_rc=$?
timing run-demo "$start"
[ "$demo_rc" -eq 0 ] || fail "./tools/run-demo.sh exited with $demo_rc (see $logs/run-demo.log)"
video=$src/build/demo-output/demo.mp4
grep -q "no display found" "$logs/run-demo.log" || fail "run-demo.sh did not take the no-display path"
grep -qF "video: $video" "$logs/run-demo.log" ||
  fail "run-demo.sh did not print where the video went (video: $video)"
[ -s "$root$video" ] || fail "no video at $video, or it is empty"
[ "$(dd if="$root$video" bs=1 skip=4 count=4 2>/dev/null)" = ftyp ] || fail "$video is not an MP4"
echo "demo video: $video ($(stat -c %s "$root$video") bytes)"

# --- 4. the test suite ---------------------------------------------------------------------
say "./tools/run-tests.sh"
start=$(date +%s)
tests_rc=0
{ in_root ./tools/run-tests.sh 2>&1 | tee "$logs/run-tests.log"; } &
wait $! || tests_rc=$?
timing run-tests "$start"
summary=$(grep -E '^tests: [0-9]+ passed' "$logs/run-tests.log" | tail -1 || true)

echo
printf '%s\n' "${timings[@]}"
echo "== fresh-root: total $(($(date +%s) - t0)) s"
if [ "$tests_rc" -ne 0 ] || [ -z "$summary" ]; then
  echo "FAILED (fresh-root): ./tools/run-tests.sh exited with $tests_rc (see $logs/run-tests.log)" >&2
  echo "${summary:-./tools/run-tests.sh printed no summary line}"
  exit 1
fi
echo "== fresh-root: PASSED on a fresh $suite: run-demo.sh (video $video), run-tests.sh"
echo "$summary"
