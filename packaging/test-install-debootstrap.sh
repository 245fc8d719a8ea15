#!/usr/bin/env bash
# Proves the Debian package in a clean Debian 12 (bookworm) system:
#   1. builds the .deb with CPack (or takes the one given),
#   2. debootstraps a minimal bookworm root from Debian's mirror,
#   3. installs the .deb there with apt, --no-install-recommends (the Depends alone must suffice),
#   4. checks: every library resolves, OpenBLAS is the BLAS, menu entry, metainfo and icons exist,
#   5. as an ordinary user: framesmith-cli --version, make-tiny-model, a tiny generate -> MP4,
#   6. the studio under Xvfb: the first start (user folders, tiny model, a note on the real
#      weights, a job), then a job with a configured model; a screenshot of each,
#   7. apt-get purge: every file the package installed is gone, and after autoremove the system
#      has exactly the packages it had before.
#
# usage: packaging/test-install-debootstrap.sh [--build-dir DIR | --deb FILE] [--out DIR]
#          [--keep-root] [--no-first-run-check] [--no-gui]
#   --out DIR             where the log-worthy results go (screenshot, file lists); default
#                         <build-dir>/install-test or ./install-test
#   --no-first-run-check  report, but do not fail on, what the studio's first start left out
# Environment:
#   FRAMESMITH_DEBIAN_MIRROR           default http://deb.debian.org/debian
#   FRAMESMITH_DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
#   FRAMESMITH_INSTALL_TEST_CACHE      default /var/tmp/framesmith-install-test-cache, "" for none:
#       keeps the debootstrapped base (a tarball, taken before anything else touches it) and
#       apt's downloaded .debs, so that a second run needs minutes less and no downloads.
# Exit status: 0 passed, 1 failed, 77 skipped (not root, or debootstrap/chroot missing).
# SC2016: dpkg-query's ${Package} formats are meant literally. SC2012/SC2013: our own file
# names and mount points, which hold no spaces.
# shellcheck disable=SC2016,SC2012,SC2013
set -euo pipefail

build_dir="" deb="" out="" keep_root=0 first_run_check=1 gui=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$(cd "$2" && pwd); shift 2 ;;
    --deb) deb=$(readlink -f "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep-root) keep_root=1; shift ;;
    --no-first-run-check) first_run_check=0; shift ;;
    --no-gui) gui=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

mirror=${FRAMESMITH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FRAMESMITH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${FRAMESMITH_INSTALL_TEST_CACHE-/var/tmp/framesmith-install-test-cache}
suite=bookworm
user=artist
# A job of a few seconds with the tiny model: 64 px, 1 s of video, 2 steps, window 2.
tiny_settings=(--resolution 64 --seconds 1 --steps 2 --window 2)
start_time=$(date +%s)

say() { echo "== [$(($(date +%s) - start_time))s] $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, mount)"
for tool in debootstrap chroot mount dpkg-deb; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install debootstrap)"
done

# --- 1. the package ---------------------------------------------------------------------------
if [ -z "$deb" ]; then
  [ -n "$build_dir" ] || fail "give --build-dir DIR or --deb FILE"
  say "building the .deb with CPack in $build_dir"
  (cd "$build_dir" && cpack -G DEB) >"$build_dir/cpack-deb.log" 2>&1 ||
    { tail -20 "$build_dir/cpack-deb.log"; fail "cpack -G DEB"; }
  deb=$(ls -t "$build_dir"/packages/framesmith_*.deb | head -1)
fi
[ -f "$deb" ] || fail "no package at $deb"
out=${out:-${build_dir:-$PWD}/install-test}
mkdir -p "$out"
out=$(cd "$out" && pwd)
say "package: $deb"
dpkg-deb -I "$deb" | tee "$out/control.txt"
arch=$(dpkg-deb -f "$deb" Architecture)

# --- 2. a fresh root --------------------------------------------------------------------------
root=$(mktemp -d /var/tmp/framesmith-install-root.XXXXXX)
xvfb_pid=""
cleanup() {
  set +e
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null
  # Unmount everything below the root, deepest first, before anything is deleted.
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if [ "$keep_root" -eq 1 ]; then
    echo "root kept at $root"
  elif awk -v r="$root/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "not deleting $root: something is still mounted below it" >&2
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT

base_tar=""
if [ -n "$cache" ]; then
  mkdir -p "$cache/archives/partial"
  base_tar="$cache/$suite-minbase-$arch.tar"
fi
if [ -n "$base_tar" ] && [ -f "$base_tar" ]; then
  say "fresh $suite root from the cached debootstrap result ($base_tar)"
  tar -C "$root" -xpf "$base_tar"
else
  say "debootstrap --variant=minbase $suite from $mirror (takes minutes)"
  debootstrap --variant=minbase --arch="$arch" ${cache:+--cache-dir="$cache/archives"} \
    "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 ||
    { tail -30 "$out/debootstrap.log"; fail "debootstrap (see $out/debootstrap.log)"; }
  if [ -n "$base_tar" ]; then
    tar -C "$root" -cpf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
  fi
fi

chmod 755 "$root"  # "/" for the test user and apt's _apt user; mktemp (and the tarball) had 0700

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# Snapshot mirrors serve Release files past their Valid-Until date; follow the host's choice.
if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99no-valid-until"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
for d in null zero random urandom tty; do
  [ -e "$root/dev/$d" ] || fail "the new root has no /dev/$d"
done
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
if [ -n "$cache" ]; then
  mount --bind "$cache/archives" "$root/var/cache/apt/archives"
fi

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }
apt_in_root() { in_root apt-get -o APT::Keep-Downloaded-Packages=true -y -q "$@"; }

say "apt-get update in the new root"
apt_in_root update >"$out/apt-update.log" 2>&1 || { cat "$out/apt-update.log"; fail "apt-get update"; }
in_root dpkg-query -W -f '${Package}\n' | sort >"$out/packages-before.txt"

# --- 3. install -------------------------------------------------------------------------------
say "apt-get install --no-install-recommends ./$(basename "$deb")"
cp "$deb" "$root/tmp/"
apt_in_root install --no-install-recommends "/tmp/$(basename "$deb")" >"$out/apt-install.log" 2>&1 ||
  { tail -40 "$out/apt-install.log"; fail "apt-get install of the package"; }
grep -E "^(Need to get|After this operation)" "$out/apt-install.log" || true
in_root dpkg -L framesmith | sort >"$out/dpkg-L.txt"
echo "installed: $(in_root dpkg-query -W -f '${Package} ${Version}\n' framesmith)"

# --- 4. static checks of the installed system -------------------------------------------------
say "checking libraries, BLAS, desktop integration"
id=io.github.framesmith.Framesmith
for f in /usr/bin/framesmith /usr/bin/framesmith-cli \
         /usr/share/applications/$id.desktop /usr/share/metainfo/$id.metainfo.xml \
         /usr/share/icons/hicolor/scalable/apps/$id.svg /usr/share/doc/framesmith/copyright \
         /usr/share/framesmith/demo/start.png; do
  [ -f "$root$f" ] || fail "not installed: $f"
done
for n in 16 22 24 32 48 64 128 256 512; do
  [ -f "$root/usr/share/icons/hicolor/${n}x${n}/apps/$id.png" ] || fail "no ${n}x${n} icon"
done
qpa=$(ls "$root"/usr/lib/*/qt6/plugins/platforms/libqxcb.so 2>/dev/null | head -1)
[ -n "$qpa" ] || fail "Qt's xcb platform plugin is missing (qt6-qpa-plugins)"
for bin in /usr/bin/framesmith /usr/bin/framesmith-cli "${qpa#"$root"}"; do
  missing=$(in_root ldd "$bin" | grep "not found" || true)
  [ -z "$missing" ] || fail "$bin: unresolved libraries: $missing"
done
blas=$(in_root sh -c 'readlink -f /usr/lib/*/libblas.so.3')
echo "libblas.so.3 -> $blas"
case "$blas" in *openblas*) ;; *) fail "the BLAS is not OpenBLAS ($blas): ~19x slower" ;; esac
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$root/usr/share/applications/$id.desktop" || fail "desktop-file-validate"
fi
if command -v appstreamcli >/dev/null; then
  appstreamcli validate --no-net "$root/usr/share/metainfo/$id.metainfo.xml" >/dev/null ||
    fail "appstreamcli validate"
fi

# --- 5. the CLI, as an ordinary user ----------------------------------------------------------
in_root useradd --create-home --shell /bin/bash "$user"
uid=$(in_root id -u "$user")
gid=$(in_root id -g "$user")
home=/home/$user
as_user() { chroot --userspec="$uid:$gid" "$root" env -i HOME="$home" USER="$user" \
  PATH=/usr/bin:/bin LANG=C.UTF-8 XDG_RUNTIME_DIR=/tmp/runtime-$user "$@"; }
check_mp4() {  # an MP4 starts with a box whose type is "ftyp"
  [ -s "$root$1" ] || fail "no video at $1"
  [ "$(dd if="$root$1" bs=1 skip=4 count=4 2>/dev/null)" = ftyp ] || fail "$1 is not an MP4"
  echo "video: $1 ($(stat -c %s "$root$1") bytes)"
}

say "framesmith-cli --version"
as_user framesmith-cli --version | tee "$out/version.txt"
grep -q "^framesmith-cli " "$out/version.txt" || fail "framesmith-cli --version"

say "framesmith-cli make-tiny-model"
as_user framesmith-cli make-tiny-model "$home/tiny" --seed 0
[ -f "$root$home/tiny/transformer/config.json" ] || fail "make-tiny-model wrote no transformer"

say "framesmith-cli generate ${tiny_settings[*]}"
as_user framesmith-cli generate --model "$home/tiny" --image /usr/share/framesmith/demo/start.png \
  --prompt x "${tiny_settings[@]}" --seed 1 --out "$home/out/tiny.mp4" 2>&1 | tail -3
check_mp4 "$home/out/tiny.mp4"

# --- 6. the studio under Xvfb ----------------------------------------------------------------
if [ "$gui" -eq 1 ]; then
  say "installing Xvfb (a test tool, removed again below)"
  apt_in_root install --no-install-recommends xvfb >"$out/apt-install-xvfb.log" 2>&1 ||
    { tail -20 "$out/apt-install-xvfb.log"; fail "apt-get install xvfb"; }
  chroot "$root" env -i PATH=/usr/bin:/bin Xvfb :77 -screen 0 1280x900x24 -nolisten tcp \
    >"$out/xvfb.log" 2>&1 &
  xvfb_pid=$!
  for _ in $(seq 50); do [ -e "$root/tmp/.X11-unix/X77" ] && break; sleep 0.2; done
  [ -e "$root/tmp/.X11-unix/X77" ] || fail "Xvfb did not start (see $out/xvfb.log)"
  as_user mkdir -p "/tmp/runtime-$user"
  chmod 700 "$root/tmp/runtime-$user"
  gui_env=(DISPLAY=:77 QT_QPA_PLATFORM=xcb)

  # The same tiny job as the CLI's; the studio takes the sizes as options.
  tiny_job=(--image /usr/share/framesmith/demo/start.png --prompt x "${tiny_settings[@]}" --autostart)

  # First start: no --model. The studio must create the user's folders, write the tiny model
  # (it has no other model), explain the real weights, and run the job with it.
  say "first start of the studio under Xvfb (no model configured), screenshot after the job"
  set +e
  as_user env "${gui_env[@]}" timeout 900 framesmith "${tiny_job[@]}" \
    --screenshot "$home/first-start.png" >"$out/gui-first-start.log" 2>&1
  first_rc=$?
  set -e
  tail -5 "$out/gui-first-start.log"
  (cd "$root$home" && { find .config .local .cache Videos -maxdepth 4 2>/dev/null || true; }) |
    sort | tee "$out/first-start-files.txt"
  echo "first start: exit status $first_rc"
  if [ -f "$root$home/first-start.png" ]; then cp "$root$home/first-start.png" "$out/"; fi
  first_start_checks() {
    [ "$first_rc" -eq 0 ] || { echo "the first start's job failed (exit $first_rc)"; return 1; }
    [ -s "$root$home/first-start.png" ] || { echo "the first start left no screenshot"; return 1; }
    for d in .config/framesmith .local/share/framesmith/models .cache/framesmith Videos/Framesmith
    do
      [ -d "$root$home/$d" ] || { echo "the first start did not create ~/$d"; return 1; }
    done
    [ -f "$root$home/.local/share/framesmith/models/tiny/transformer/config.json" ] ||
      { echo "the first start did not write the tiny model"; return 1; }
    [ -f "$root$home/.local/share/framesmith/models/README.txt" ] ||
      { echo "the first start did not explain the real weights (models/README.txt)"; return 1; }
    ls "$root$home"/Videos/Framesmith/*.mp4 >/dev/null 2>&1 ||
      { echo "the first start's job left no video in ~/Videos/Framesmith"; return 1; }
  }
  if why=$(first_start_checks); then
    echo "first start: user folders, tiny model, models/README.txt and a video: all there"
  elif [ "$first_run_check" -eq 1 ]; then
    fail "$why"
  else
    echo "first start NOT as required (ignored: --no-first-run-check): $why"
  fi

  say "the studio with a configured model (the CLI's tiny model), screenshot after the job"
  as_user env "${gui_env[@]}" timeout 900 framesmith --model "$home/tiny" \
    --output-dir "$home/studio" "${tiny_job[@]}" --screenshot "$home/studio.png" \
    >"$out/gui.log" 2>&1 || { tail -20 "$out/gui.log"; fail "the studio's job under Xvfb"; }
  [ -s "$root$home/studio.png" ] || fail "no screenshot"
  cp "$root$home/studio.png" "$out/studio-screenshot.png"
  video=$(ls "$root$home"/studio/*.mp4 2>/dev/null | head -1)
  check_mp4 "${video#"$root"}"
  echo "screenshot: $out/studio-screenshot.png"
  kill "$xvfb_pid" 2>/dev/null || true
  wait "$xvfb_pid" 2>/dev/null || true
  xvfb_pid=""
fi

# --- 7. purge: nothing may be left ------------------------------------------------------------
say "apt-get purge framesmith, then autoremove"
apt_in_root purge framesmith >"$out/apt-purge.log" 2>&1 || { cat "$out/apt-purge.log"; fail "purge"; }
[ "$gui" -eq 0 ] || apt_in_root purge xvfb >>"$out/apt-purge.log" 2>&1
apt_in_root autoremove --purge >>"$out/apt-purge.log" 2>&1 || fail "autoremove"
status=$(in_root dpkg-query -W -f '${Status}' framesmith 2>/dev/null || true)
case "$status" in "" | *not-installed) ;; *) fail "dpkg still knows framesmith: $status" ;; esac
left=()
while IFS= read -r path; do
  [ "$path" = /. ] && continue
  if [ -d "$root$path" ] && [ ! -L "$root$path" ]; then
    # A folder may stay when another package owns it or it holds others' files.
    if [ -z "$(ls -A "$root$path")" ] && ! in_root dpkg -S "$path" >/dev/null 2>&1; then
      left+=("$path (empty folder)")
    fi
  elif [ -e "$root$path" ] || [ -L "$root$path" ]; then
    left+=("$path")
  fi
done <"$out/dpkg-L.txt"
ls "$root"/var/lib/dpkg/info/framesmith.* >/dev/null 2>&1 && left+=("/var/lib/dpkg/info/framesmith.*")
if [ ${#left[@]} -gt 0 ]; then
  printf '  left: %s\n' "${left[@]}"
  fail "${#left[@]} path(s) of the package are still there after the purge"
fi
in_root dpkg-query -W -f '${Package}\n' | sort >"$out/packages-after.txt"
if ! diff -u "$out/packages-before.txt" "$out/packages-after.txt"; then
  fail "after purge and autoremove the installed packages differ from before the install"
fi
echo "purge: all $(grep -vc '^/\.$' "$out/dpkg-L.txt") paths of the package are gone;" \
  "$(wc -l <"$out/packages-before.txt") packages, as before the install"
say "PASSED: installed, ran (CLI$([ "$gui" -eq 1 ] && echo ", studio under Xvfb"))," \
  "purged without leftovers"
