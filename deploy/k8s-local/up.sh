#!/usr/bin/env bash
# Start the single-node Kubernetes 1.20.2 that build.sh made: etcd (TLS, client certificates), kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (its own socket and state, CRI with restrict_oom_score_adj),
# kubelet and kube-proxy (iptables mode, so ClusterIPs are routed). Certificates, the service-account key and the
# tokens are generated here at every fresh start: nothing secret is in the repository. Idempotent: when the cluster
# already answers and its node is Ready, it only says so.
# Usage: deploy/k8s-local/up.sh [DIR]         (root; DIR defaults to .deploy-tools/k8s; stop with down.sh)
#   then: export KUBECONFIG=DIR/kubeconfig    (kubectl: DIR/bin/kubectl, the same 1.20.2)
# Env: K8S_LOCAL_FORWARD="5432 6379"  host ports (on 127.0.0.1) exposed to pods at the bridge gateway 10.244.0.1
#      (the machine's PostgreSQL and Redis; "" for none).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="$(realpath -m "${1:-$ROOT/.deploy-tools/k8s}")"
BIN="$DIR/bin"
RUN="$DIR/run"
PKI="$RUN/pki"
LOGS="$RUN/logs"
PIDS="$RUN/pids"
NODE=k8s-local
POD_CIDR=10.244.0.0/16
NODE_SUBNET=10.244.0.0/24
GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
API_PORT=6443
ETCD_PORT=23790
FORWARD="${K8S_LOCAL_FORWARD-5432 6379}"
export KUBECONFIG="$DIR/kubeconfig"
KUBECTL=("$BIN/kubectl" --kubeconfig "$KUBECONFIG")

node_ready() {
  [[ -f $KUBECONFIG ]] && [[ "$("${KUBECTL[@]}" get node "$NODE" --request-timeout=5s \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
if node_ready; then
  echo "up.sh: already running (node $NODE Ready); KUBECONFIG=$KUBECONFIG"
  exit 0
fi
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  command -v "$b" >/dev/null || [[ -x "$BIN/$b" ]] || { echo "up.sh: $b missing: run build.sh first" >&2; exit 1; }
done
if [[ -d $RUN ]]; then "$(dirname "$0")/down.sh" "$DIR"; fi
mkdir -p "$PKI" "$LOGS" "$PIDS" "$RUN/cni/net.d" "$RUN/cni/ipam" "$RUN/containerd" "$RUN/kubelet"
chmod 700 "$RUN" "$PKI"
NODE_IP="$(ip -4 -o addr show dev "$(ip -4 route show default | awk '{print $5; exit}')" \
  | awk '{split($4, a, "/"); print a[1]; exit}')"

# start NAME CMD...: run CMD in its own session, log to LOGS/NAME.log, pid in PIDS/NAME.pid
start() {
  local name="$1"
  shift
  setsid nohup "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}
# wait_for WHAT SECONDS CMD...: poll CMD every second until it succeeds
wait_for() {
  local what="$1" limit="$2"
  shift 2
  for ((i = 0; i < limit; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "up.sh: $what not up after ${limit}s; its log ($LOGS):" >&2
  tail -n 30 "$LOGS/$what.log" >&2 || true
  exit 1
}

# --- PKI: one CA; serving certs for etcd, the apiserver and the kubelet; client certs for the apiserver ---
(
  cd "$PKI"
  umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=k8s-local-ca" 2>/dev/null
  cert() { # cert NAME SUBJECT EXTENDED_KEY_USAGE [SAN]
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    {
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$3"
      [[ -z ${4:-} ]] || echo "subjectAltName=$4"
    } >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" \
      -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  cert etcd "/CN=etcd" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
  cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:${SERVICE_CIDR%.0/16}.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert kubelet "/CN=$NODE" serverAuth "IP:$NODE_IP,DNS:$NODE"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  # bearer tokens (random, this start only): user,uid,groups as the RBAC bootstrap roles expect
  : >tokens.csv
  for who in "admin,admin,system:masters" "system:kube-controller-manager,cm," "system:kube-scheduler,sched," \
    "system:node:$NODE,node,system:nodes" "system:kube-proxy,proxy,"; do
    IFS=, read -r user uid group <<<"$who"
    token="$(openssl rand -hex 32)"
    echo "$token,$user,$uid${group:+,\"$group\"}" >>tokens.csv
    echo "$token" >"token-${uid}"
  done
)
kubeconfig() { # kubeconfig FILE TOKEN_FILE
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: k8s-local
    cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
  - name: user
    user: {tokenFile: "$2"}
contexts:
  - name: k8s-local
    context: {cluster: k8s-local, user: user, namespace: default}
current-context: k8s-local
EOF
  chmod 600 "$1"
}
kubeconfig "$KUBECONFIG" "$PKI/token-admin"
for c in cm sched node proxy; do kubeconfig "$RUN/$c.kubeconfig" "$PKI/token-$c"; done

# --- etcd: loopback only, TLS with client certificates ---
start etcd etcd --name k8s-local --data-dir "$RUN/etcd" \
  --listen-client-urls "https://127.0.0.1:$ETCD_PORT" --advertise-client-urls "https://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-cluster "k8s-local=http://127.0.0.1:$((ETCD_PORT + 10))" \
  --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" --client-cert-auth --trusted-ca-file "$PKI/ca.crt" \
  --listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 20))"
wait_for etcd 30 curl -sf "http://127.0.0.1:$((ETCD_PORT + 20))/health"

# --- control plane ---
start kube-apiserver "$BIN/kube-apiserver" --bind-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
  --advertise-address "$NODE_IP" --etcd-servers "https://127.0.0.1:$ETCD_PORT" --etcd-cafile "$PKI/ca.crt" \
  --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
  --token-auth-file "$PKI/tokens.csv" --anonymous-auth=false --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction --allow-privileged=false --profiling=false \
  --service-account-issuer https://kubernetes.default.svc.cluster.local --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" --service-cluster-ip-range "$SERVICE_CIDR" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI/apiserver-kubelet-client.key" --kubelet-preferred-address-types InternalIP \
  --endpoint-reconciler-type none
wait_for kube-apiserver 90 "${KUBECTL[@]}" get --raw /readyz
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$RUN/cm.kubeconfig" \
  --authentication-kubeconfig "$RUN/cm.kubeconfig" --authorization-kubeconfig "$RUN/cm.kubeconfig" \
  --bind-address 127.0.0.1 --port 0 --leader-elect=false --profiling=false \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --use-service-account-credentials --cluster-cidr "$POD_CIDR" --service-cluster-ip-range "$SERVICE_CIDR"
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$RUN/sched.kubeconfig" \
  --authentication-kubeconfig "$RUN/sched.kubeconfig" --authorization-kubeconfig "$RUN/sched.kubeconfig" \
  --bind-address 127.0.0.1 --port 0 --leader-elect=false --profiling=false

# --- node networking: the CNI bridge made up front with its gateway address, so the host services can be bound
#     on it before the first pod; FORWARD accepted for the bridge (a Docker engine sets the policy to DROP) ---
ip link add cni0 type bridge 2>/dev/null || true
ip addr replace "$GATEWAY/24" dev cni0
ip link set cni0 up
iptables -C FORWARD -i cni0 -m comment --comment k8s-local -j ACCEPT 2>/dev/null \
  || iptables -I FORWARD -i cni0 -m comment --comment k8s-local -j ACCEPT
iptables -C FORWARD -o cni0 -m comment --comment k8s-local -j ACCEPT 2>/dev/null \
  || iptables -I FORWARD -o cni0 -m comment --comment k8s-local -j ACCEPT
modprobe br_netfilter 2>/dev/null || true
cat >"$RUN/cni/net.d/10-k8s-local.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "k8s-local",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$RUN/cni/ipam",
              "ranges": [[{"subnet": "$NODE_SUBNET", "gateway": "$GATEWAY"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
for port in $FORWARD; do # the host's loopback-only services, reachable from pods at GATEWAY:port
  start "forward-$port" socat "TCP-LISTEN:$port,bind=$GATEWAY,fork,reuseaddr" "TCP:127.0.0.1:$port"
done

# --- containerd: its own socket, root and state (beside any Docker engine's), CRI on the CNI bridge ---
SOCK="$RUN/containerd/containerd.sock"
cat >"$RUN/containerd/config.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.local/pause:3.4.1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
EOF
start containerd containerd --config "$RUN/containerd/config.toml"
wait_for containerd 30 ctr --address "$SOCK" version
for image in "$DIR"/images/*.tar; do
  ctr --address "$SOCK" -n k8s.io images import "$image" >/dev/null
done

# --- kubelet (cgroupfs, no QoS cgroups, no allocatable enforcement: this host gives no CAP_SYS_RESOURCE) ---
cat >"$RUN/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$NODE_IP"
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
cgroupDriver: cgroupfs
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
serializeImagePulls: false
EOF
start kubelet "$BIN/kubelet" --config "$RUN/kubelet/config.yaml" --kubeconfig "$RUN/node.kubeconfig" \
  --container-runtime remote --container-runtime-endpoint "unix://$SOCK" --root-dir "$RUN/kubelet" \
  --cert-dir "$RUN/kubelet/pki" --hostname-override "$NODE" --node-ip "$NODE_IP"

# --- kube-proxy: iptables mode, so a Service's ClusterIP is routed on this host ---
start kube-proxy "$BIN/kube-proxy" --kubeconfig "$RUN/proxy.kubeconfig" --hostname-override "$NODE" \
  --proxy-mode iptables --cluster-cidr "$POD_CIDR" --conntrack-max-per-core 0 \
  --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256

wait_for kubelet 120 node_ready
echo "up.sh: node $NODE Ready (${NODE_IP}); KUBECONFIG=$KUBECONFIG; logs in $LOGS"
