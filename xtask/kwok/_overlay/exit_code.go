// Added to sigs.k8s.io/kwok/pkg/kwok/server when kube-testenv builds kwok
// (with `go build -overlay`, see kube-testenv/src/binaries.rs): our code,
// not upstream's.
//
// KWOK v0.8.0 returns a local command's failure as a wrapped *os/exec.ExitError.
// The streaming server it uses (k8s.io/cri-streaming remotecommand) reports
// an exit code only for an error that *is* a k8s.io/utils/exec.ExitError, so
// every non-zero exit reached clients as an internal error with exit code 1.
// A kubelet reports the code (Status reason NonZeroExitCode, cause ExitCode);
// this makes KWOK do the same. (kube-testenv also patches a few statements of
// KWOK when it builds it: see KWOK_PATCHES in kube-testenv/src/binaries.rs.)

package server

import (
	"errors"
	osexec "os/exec"

	utilexec "k8s.io/utils/exec"
)

// kubeTestenvExitCode turns a command's non-zero exit into the error type
// that carries its exit code to the client; other errors pass unchanged.
func kubeTestenvExitCode(err error) error {
	var exitErr *osexec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}
