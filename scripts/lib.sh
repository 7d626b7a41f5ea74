# shellcheck shell=bash
# Shared by scripts/test, scripts/demo and scripts/fresh-check (source it): the
# Debian packages logpipe builds, tests and runs its services with, installed
# when missing, and a check of the toolchain that names what is still missing.
#
# One table: every row is "package|kind|what", where kind says how
# check_toolchain proves the package is usable:
#   cmd     a command on PATH            pc      a pkg-config module
#   py      a Python module              link    a program that must link:
#   (what is then the flags, e.g. 'gcc -fsanitize=address,undefined')
# A package may have several rows. install_packages installs every package of
# the table; a row's package is what the check names when that row fails.
toolchain=(
  "build-essential|cmd|gcc"
  "build-essential|cmd|make"
  "build-essential|link|gcc -fsanitize=address,undefined"
  "cmake|cmd|cmake"
  "pkg-config|cmd|pkg-config"
  "clang|cmd|clang"
  "CLANG_RT|link|clang -fsanitize=fuzzer,address,undefined"
  "CLANG_RT|link|clang -fsanitize=address,undefined"
  "valgrind|cmd|valgrind"
  "curl|cmd|curl"
  "kcat|cmd|kcat"
  "zstd|cmd|zstd"
  "openssl|cmd|openssl"
  "python3|cmd|python3"
  "python3-yaml|py|yaml"
  "python3-venv|py|venv"
  "prometheus|cmd|promtool"
  "systemd|cmd|systemd-analyze"
  "shellcheck|cmd|shellcheck"
  "openjdk-17-jdk-headless|cmd|java"
  "openjdk-17-jdk-headless|cmd|javac"
  "maven|cmd|mvn"
  "librdkafka-dev|pc|rdkafka"
  "libzstd-dev|pc|libzstd"
  "zlib1g-dev|pc|zlib"
  "libjansson-dev|pc|jansson"
  "libyaml-dev|pc|yaml-0.1"
  "libcunit1-dev|pc|cunit"
  "libcurl4-openssl-dev|pc|libcurl"
  "libssl-dev|pc|libcrypto"
  "libmicrohttpd-dev|pc|libmicrohttpd"
  "libpcre2-dev|pc|libpcre2-8"
  "libxxhash-dev|pc|libxxhash"
  "etcd-server|cmd|etcd"
)

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# clang's sanitizer and libFuzzer runtime is a separate package that apt only
# *recommends* with clang (Debian 12: libclang-rt-14-dev), so an install with
# --no-install-recommends never has it. Its name follows clang's major version;
# older releases (Ubuntu 22.04) ship it inside libclang-common-N-dev, which
# clang depends on anyway. Prints the package name.
clang_rt_package() {
  local major=""
  if command -v clang >/dev/null; then
    major=$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n1)
  else
    major=$(apt-cache depends clang 2>/dev/null | sed -n 's/.*Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n1)
  fi
  [ -n "$major" ] || major=14
  if apt-cache show "libclang-rt-$major-dev" >/dev/null 2>&1; then
    echo "libclang-rt-$major-dev"
  else
    echo "libclang-common-$major-dev"
  fi
}

# The table's package for a row (CLANG_RT resolved).
row_package() {
  local p=${1%%|*}
  [ "$p" = CLANG_RT ] && p=$(clang_rt_package)
  echo "$p"
}

install_packages() {
  local missing=() row p seen=" "
  # a first pass without the clang runtime: its name needs clang's version
  for row in "${toolchain[@]}"; do
    p=${row%%|*}
    [ "$p" = CLANG_RT ] && continue
    case "$seen" in *" $p "*) continue ;; esac
    seen+="$p "
    installed "$p" || missing+=("$p")
  done
  # A JDK/Maven from elsewhere (SDKMAN, Temurin) is fine too.
  if command -v java >/dev/null && command -v javac >/dev/null && command -v mvn >/dev/null; then
    local kept=()
    for p in "${missing[@]+"${missing[@]}"}"; do
      case "$p" in openjdk-*|maven) ;; *) kept+=("$p") ;; esac
    done
    missing=("${kept[@]+"${kept[@]}"}")
  fi
  local updated=0
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing: ${missing[*]}"
    as_root apt-get update -qq
    updated=1
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  p=$(clang_rt_package)
  if ! installed "$p"; then
    [ $updated -eq 1 ] || as_root apt-get update -qq
    step "installing: $p (clang's sanitizer and libFuzzer runtime)"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  fi
}

# check_row ROW: 0 when the row's tool works.
check_row() {
  local kind what tmp rc
  kind=${1#*|}; kind=${kind%%|*}
  what=${1##*|}
  case "$kind" in
  cmd) command -v "$what" >/dev/null ;;
  pc) command -v pkg-config >/dev/null && pkg-config --exists "$what" ;;
  py) command -v python3 >/dev/null && python3 -c "import $what" 2>/dev/null ;;
  link)
    command -v "${what%% *}" >/dev/null || return 1
    tmp=$(mktemp -d)
    if [[ $what == *fuzzer* ]]; then
      printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$tmp/t.c"
    else
      printf '%s\n' 'int main(void) { return 0; }' >"$tmp/t.c"
    fi
    # shellcheck disable=SC2086
    $what "$tmp/t.c" -o "$tmp/t" >"$tmp/log" 2>&1
    rc=$?
    rm -rf "$tmp"
    return $rc
    ;;
  esac
}

describe_row() {
  local kind=${1#*|} what=${1##*|}
  case "${kind%%|*}" in
  cmd) echo "command '$what'" ;;
  pc) echo "pkg-config module '$what'" ;;
  py) echo "Python module '$what'" ;;
  link) echo "a program linked with '$what'" ;;
  esac
}

# check_toolchain: every row of the table, all at once; on failure prints one
# line per missing piece with the package that provides it and returns 1.
check_toolchain() {
  local row bad=0 p v
  for row in "${toolchain[@]}"; do
    check_row "$row" && continue
    p=$(row_package "$row")
    printf 'missing: %-52s (Debian package %s)\n' "$(describe_row "$row")" "$p" >&2
    bad=1
  done
  # Java: OpenSearch 2.19 needs 17+, and the launcher runs as a source file
  if command -v java >/dev/null; then
    v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ -z "$v" ] || [ "${v%%.*}" -lt 17 ] 2>/dev/null; then
      printf 'missing: %-52s (Debian package openjdk-17-jdk-headless)\n' "java 17 or newer (found ${v:-?})" >&2
      bad=1
    fi
  fi
  if [ $bad -ne 0 ]; then
    echo "the toolchain is incomplete: install the packages above (scripts/test installs them when it can)" >&2
    return 1
  fi
  echo "toolchain ok: gcc, clang with its sanitizer and fuzzer runtime, valgrind, java, maven, kcat, ${#toolchain[@]} checks"
}

# A Go new enough for the tools (1.26: helm-unittest needs it): the machine's, or the toolchain
# module the Go command itself would fetch (golang.org/toolchain on the Go
# module proxy), unpacked into $1/go. Debian 12's golang-go is 1.19. Prints
# the go binary's path.
go_ok() { "$1" version 2>/dev/null | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'; }
go_toolchain() {
  local tools=$1 gobin arch ver
  gobin=$(command -v go || true)
  if [ -n "$gobin" ] && go_ok "$gobin"; then
    echo "$gobin"
    return
  fi
  gobin="$tools/go/bin/go"
  if ! go_ok "$gobin"; then
    case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
    ver=go1.26.8
    step "fetching the $ver toolchain from the Go module proxy" >&2
    mkdir -p "$tools"
    curl -fsSL --retry 3 -o "$tools/go.zip" \
      "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$ver.linux-$arch.zip"
    rm -rf "$tools/go"
    python3 - "$tools/go.zip" "$tools/go" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    # entries are golang.org/toolchain@<version>/<path>
    at = i.filename.find("@")
    cut = i.filename.find("/", at) if at >= 0 else -1
    rel = i.filename[cut + 1:] if cut >= 0 else ""
    if not rel or i.is_dir():
        continue
    out = os.path.join(sys.argv[2], rel)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with z.open(i) as src, open(out, "wb") as dst:
        dst.write(src.read())
    mode = (i.external_attr >> 16) & 0o777
    os.chmod(out, mode or 0o644)
PY
    rm -f "$tools/go.zip"
  fi
  echo "$gobin"
}
