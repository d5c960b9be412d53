// Command smoke is the local cluster's own test workload: a static HTTP server that answers every path with
// "ok <hostname>". deploy/k8s-local/build.sh compiles it (CGO off, no dependency) into the image
// k8s.local/smoke:1, which smoke.yaml runs behind a ClusterIP Service to prove scheduling, CNI and kube-proxy.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok %s\n", host)
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
