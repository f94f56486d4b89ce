// Command kube-cp is kube-apiserver, kube-controller-manager and etcd in one binary, built from
// the upstream modules pinned in go.mod. It picks the program from the name it was started as
// (realcluster/build.sh links kube-apiserver, kube-controller-manager and etcd to it) or
// from its first argument (`kube-cp kube-apiserver --help`). One binary instead of three saves
// two links of the shared Kubernetes packages and about 200 MB of disk on the build machine.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as the upstream commands

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if name == "kube-cp" {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: kube-cp kube-apiserver|kube-controller-manager|etcd [flags]")
			os.Exit(2)
		}
		name = os.Args[1]
		args = os.Args[1:]
	}
	switch name {
	case "kube-apiserver":
		os.Args = args
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Args = args
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "etcd":
		etcdmain.Main(args)
	default:
		fmt.Fprintf(os.Stderr, "kube-cp: unknown program %q (kube-apiserver, kube-controller-manager, etcd)\n", name)
		os.Exit(2)
	}
}
