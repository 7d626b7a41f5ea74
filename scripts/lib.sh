# Shared by scripts/test and scripts/demo (source it): the Debian packages
# logpipe builds, tests and runs its services with, installed when missing.
packages=(build-essential cmake pkg-config clang valgrind curl kcat zstd python3
  librdkafka-dev libzstd-dev zlib1g-dev libjansson-dev libyaml-dev libcunit1-dev
  libcurl4-openssl-dev libmicrohttpd-dev libpcre2-dev libxxhash-dev
  python3-yaml openjdk-17-jdk-headless maven)

step() { printf '\n==> %s\n' "$*"; }

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # A JDK/Maven from elsewhere (SDKMAN, Temurin) is fine too.
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    local kept=()
    for p in "${missing[@]}"; do
      case "$p" in openjdk-*|maven) ;; *) kept+=("$p") ;; esac
    done
    missing=("${kept[@]+"${kept[@]}"}")
  fi
  [ ${#missing[@]} -eq 0 ] && return
  step "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
