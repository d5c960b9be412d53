#!/usr/bin/env bash
# Stop the local Kubernetes that up.sh started and remove its state: the pods' containers and sandboxes, every
# process up.sh started (by the pids it recorded), the mounts under the run folder, the CNI bridge and network
# namespaces, kube-proxy's and the bridge plugin's iptables rules, then the run folder itself (certificates, tokens,
# etcd data). The build (binaries, images) is kept.
# Usage: deploy/k8s-local/down.sh [DIR]       (root; DIR defaults to .deploy-tools/k8s)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="$(realpath -m "${1:-$ROOT/.deploy-tools/k8s}")"
RUN="$DIR/run"
PIDS="$RUN/pids"
SOCK="$RUN/containerd/containerd.sock"
[[ -d $RUN ]] || { echo "down.sh: nothing to stop ($RUN absent)"; exit 0; }

stop() { # stop NAME: SIGTERM the recorded pid, SIGKILL after 10 s
  local file="$PIDS/$1.pid" pid
  [[ -f $file ]] || return 0
  pid="$(cat "$file")"
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# the kubelet first (it would restart what we remove), then every pod container and sandbox through containerd
stop kubelet
if [[ -S $SOCK ]] && ctr --address "$SOCK" version >/dev/null 2>&1; then
  ctr_=(ctr --address "$SOCK" -n k8s.io)
  for task in $("${ctr_[@]}" tasks ls -q 2>/dev/null); do
    "${ctr_[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
  done
  sleep 1
  for task in $("${ctr_[@]}" tasks ls -q 2>/dev/null); do "${ctr_[@]}" tasks rm -f "$task" >/dev/null 2>&1 || true; done
  for c in $("${ctr_[@]}" containers ls -q 2>/dev/null); do "${ctr_[@]}" containers rm "$c" >/dev/null 2>&1 || true; done
fi
for name in kube-proxy containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$name"; done
for file in "$PIDS"/forward-*.pid; do
  if [[ -e $file ]]; then stop "$(basename "$file" .pid)"; fi
done

# iptables: kube-proxy's own clean-up, then every jump to and chain of the kubelet (KUBE-*) and the bridge
# plugin (CNI-*) by rule number (their comments hold quotes), and our FORWARD rules; Docker's rules are kept
if [[ -x $DIR/bin/kube-proxy ]]; then "$DIR/bin/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
for table in filter nat mangle; do
  for chain in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do
    iptables -t "$table" -L "$chain" -n --line-numbers 2>/dev/null | awk 'NR > 2 && $2 ~ /^(KUBE|CNI)-/ {print $1}' \
      | sort -rn | while read -r num; do iptables -t "$table" -D "$chain" "$num" 2>/dev/null || true; done || true
  done
  chains="$(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}' || true)"
  for chain in $chains; do iptables -t "$table" -F "$chain" 2>/dev/null || true; done
  for chain in $chains; do iptables -t "$table" -X "$chain" 2>/dev/null || true; done
done
while iptables -D FORWARD -i cni0 -m comment --comment k8s-local -j ACCEPT 2>/dev/null; do :; done
while iptables -D FORWARD -o cni0 -m comment --comment k8s-local -j ACCEPT 2>/dev/null; do :; done

# mounts under the run folder (deepest first), the pods' network namespaces, the bridge
awk -v run="$RUN" 'index($2, run) == 1 {print $2}' /proc/mounts | sort -r | while read -r mnt; do
  umount -l "$mnt" 2>/dev/null || true
done
for ns in /run/netns/cni-*; do
  [[ -e $ns ]] || continue
  umount -l "$ns" 2>/dev/null || true
  rm -f "$ns"
done
ip link del cni0 2>/dev/null || true
rm -rf "$RUN" "$DIR/kubeconfig"
echo "down.sh: stopped; state removed ($RUN)"
