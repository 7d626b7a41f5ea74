#!/usr/bin/env bash
# Builds the Kubernetes API server the integration tests talk to (no kubelet,
# no container runtime: tests/support/kube_api.py starts it with Debian's
# etcd) from the k8s.io/kubernetes module on the Go module proxy, into
# $LP_TOOLS_DIR/bin/kube-apiserver (default .run/tools), once: a few
# minutes the first time, nothing after. Pinned: Kubernetes v1.34.4. The
# kubectl of the same release goes to $LP_TOOLS_DIR/bin/kubectl (kubectl
# apply, auth can-i: tests/integration/test_helm_apiserver.py).
#   tests/infra/kube/build.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
tools=${LP_TOOLS_DIR:-$repo/.run/tools}
version=1.34.4
. "$repo/scripts/lib.sh"
out="$tools/bin/kube-apiserver"
if [ -x "$out" ] && [ -x "$tools/bin/kubectl" ] &&
  [ "$(cat "$tools/bin/kube-apiserver.version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
gobin=$(go_toolchain "$tools")
src="$tools/kube-src"
mkdir -p "$src/kubectl" "$tools/bin"
cp "$repo/tests/infra/kube/main.go" "$src/main.go"
cp "$repo/tests/infra/kube/kubectl/main.go" "$src/kubectl/main.go"
# k8s.io/kubernetes requires its staging modules at v0.0.0: each is replaced
# by the published module of the same release
{
  printf 'module logpipe.test/kube-apiserver\n\ngo 1.24\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$version"
  for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go \
    cloud-provider cluster-bootstrap code-generator component-base component-helpers \
    controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation \
    endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
    kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission \
    sample-apiserver sample-cli-plugin sample-controller; do
    printf '\tk8s.io/%s => k8s.io/%s v0.%s\n' "$m" "$m" "${version#1.}"
  done
  printf ')\n'
} >"$src/go.mod"
step "building kube-apiserver and kubectl v$version from the Go module proxy (once)"
(
  cd "$src"
  export GOPATH="$tools/gopath" GOFLAGS=-modcacherw GOTOOLCHAIN=local
  "$gobin" mod tidy
  "$gobin" build -o "$out" -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=v$version \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" .
  "$gobin" build -o "$tools/bin/kubectl" -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=v$version \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" ./kubectl
)
echo "$version" >"$tools/bin/kube-apiserver.version"
