//go:build !windows

// Added to sigs.k8s.io/kwok/pkg/utils/exec when kube-testenv builds kwok
// (see kube-testenv/src/binaries.rs): our code, not upstream's.
//
// A command started with a context from KubeTestenvWithControllingTerminal
// runs as the leader of a new session whose controlling terminal is its
// stdin (which must be a terminal), as a process in a container's TTY does:
// the terminal's Ctrl-C then interrupts it. Used by the server's TTY exec
// (zz_kube_testenv_tty.go there); KWOK v0.8.0 has no such option.

package exec

import (
	"context"
	"os/exec"
	"syscall"
)

type kubeTestenvControllingTerminalKey struct{}

// KubeTestenvWithControllingTerminal returns a context whose command gets
// its stdin as controlling terminal.
func KubeTestenvWithControllingTerminal(ctx context.Context) context.Context {
	return context.WithValue(ctx, kubeTestenvControllingTerminalKey{}, true)
}

// kubeTestenvControllingTerminal applies that option to cmd (called by the
// patched Command, before the command starts).
func kubeTestenvControllingTerminal(ctx context.Context, cmd *exec.Cmd) {
	if ctx.Value(kubeTestenvControllingTerminalKey{}) == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	// The child's descriptor 0: its stdin, the terminal.
	cmd.SysProcAttr.Ctty = 0
}
