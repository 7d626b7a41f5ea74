// kubectl for logpipe's tests (kubectl apply, auth can-i against the API
// server of tests/infra/kube), built from the k8s.io/kubectl module of the
// same release.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
