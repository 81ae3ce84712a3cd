#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd the test harness runs, into the cache directory.
# A cold build takes 8-13 min on 2 cores; with the Go build cache kept, a rebuild takes seconds,
# and an existing binary of the pinned version is reused without invoking go at all.
set -euo pipefail
cache=${EDGEGATE_CACHE:-$HOME/.cache/edgegate}
here=$(cd "$(dirname "$0")/kube" && pwd)
kube_version=v1.37.2 # keep in step with kube/go.mod
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$here/go.mod")
bin=$cache/bin
mkdir -p "$bin"

apiserver=$bin/kube-apiserver-$kube_version
etcd=$bin/etcd-$etcd_version
if [[ ! -x $apiserver ]]; then
  echo "building kube-apiserver $kube_version (cold: ~10 min)" >&2
  ldflags="-X k8s.io/component-base/version.gitVersion=$kube_version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$apiserver.tmp" "$apiserver"
fi
if [[ ! -x $etcd ]]; then
  echo "building etcd $etcd_version" >&2
  (cd "$here" && go build -trimpath -o "$etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$etcd.tmp" "$etcd"
fi
ln -sf "$(basename "$apiserver")" "$bin/kube-apiserver"
ln -sf "$(basename "$etcd")" "$bin/etcd"
echo "$bin"
