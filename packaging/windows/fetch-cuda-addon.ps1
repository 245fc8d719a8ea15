# Adds NVIDIA GPU support to an installed Framesmith: downloads the CUDA add-on (the CUDA part of
# LibTorch: torch_cuda, cuDNN, cuBLAS, ...; too large for the installer's 2 GB limit), checks its
# SHA-256 against cuda-addon.json and unpacks it into <install dir>\cuda, where framesmith.exe
# looks for torch_cuda.dll at start. Run by the installer, or later from the Start menu.
param([string]$Config = (Join-Path $PSScriptRoot 'cuda-addon.json'))
$ErrorActionPreference = 'Stop'

function Fail($msg) { Write-Host "Framesmith CUDA add-on: $msg" -ForegroundColor Red; Read-Host 'Press Enter'; exit 1 }

$cfg = Get-Content -Raw $Config | ConvertFrom-Json
if (-not $cfg.url) { Fail 'this build of the installer names no download address (cuda-addon.json).' }
if ($cfg.sha256 -notmatch '^[0-9a-fA-F]{64}$') { Fail 'cuda-addon.json holds no valid SHA-256.' }

$dest = Join-Path $PSScriptRoot 'cuda'
$zip = Join-Path $env:TEMP "framesmith-cuda-addon-$($cfg.version).zip"

function Test-Zip { (Test-Path $zip) -and ((Get-FileHash -Algorithm SHA256 $zip).Hash -eq $cfg.sha256.ToUpper()) }

if (-not (Test-Zip)) {
  Write-Host "Downloading $($cfg.size) from $($cfg.url) ..."
  try {
    # BITS survives flaky connections and shows progress; plain HTTPS download otherwise.
    Start-BitsTransfer -Source $cfg.url -Destination $zip -DisplayName 'Framesmith NVIDIA GPU support'
  } catch {
    $ProgressPreference = 'SilentlyContinue'  # the progress bar slows Invoke-WebRequest ~10x
    Invoke-WebRequest -Uri $cfg.url -OutFile $zip -UseBasicParsing
  }
  if (-not (Test-Zip)) {
    $got = (Get-FileHash -Algorithm SHA256 $zip).Hash
    Remove-Item -Force $zip
    Fail "the download is damaged or not the expected file (SHA-256 $got, expected $($cfg.sha256))."
  }
}

# Unpack beside the final folder and rename at the end: a half-unpacked add-on is never used.
$partial = "$dest.partial"
if (Test-Path $partial) { Remove-Item -Recurse -Force $partial }
Expand-Archive -Path $zip -DestinationPath $partial
if (-not (Test-Path (Join-Path $partial 'torch_cuda.dll'))) { Fail 'the add-on holds no torch_cuda.dll.' }
if (Test-Path $dest) { Remove-Item -Recurse -Force $dest }
Rename-Item $partial $dest
Remove-Item -Force $zip
Write-Host "NVIDIA GPU support installed in $dest. Restart Framesmith to use it."
