//go:build !windows

// Added to sigs.k8s.io/kwok/pkg/kwok/server when kube-testenv builds kwok
// (see kube-testenv/src/binaries.rs): our code, not upstream's.
//
// KWOK v0.8.0 runs a TTY exec on a pseudo-terminal (execInContainerWithTTY)
// but with two gaps that a kubelet does not have:
//   - the command does not get the terminal as its controlling terminal
//     (no new session), so a Ctrl-C typed by the client (byte 0x03) sends
//     no SIGINT, and shells warn that job control is off;
//   - when the command exits, the terminal is closed at once, so output the
//     command wrote just before exiting may never reach the client, and the
//     exit code is not reported (the error is not a utilsexec.ExitError).
// This runs the command as the leader of a new session whose controlling
// terminal is the pty (as runc does for a container's TTY exec), copies
// the terminal's output to the client until the last process holding the
// terminal is gone (bounded by kubeTestenvTTYDrain), and reports the exit
// code. Resizes are applied as upstream does.

package server

import (
	"context"
	"io"
	"time"

	cpty "github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"sigs.k8s.io/kwok/pkg/log"
	utilsexec "sigs.k8s.io/kwok/pkg/utils/exec"
)

// kubeTestenvTTYDrain bounds how long the terminal's output is still
// copied after the command exited (a background process it started may
// keep the terminal open for ever).
const kubeTestenvTTYDrain = 2 * time.Second

func (s *Server) kubeTestenvExecWithTTY(ctx context.Context, cmd []string, in io.Reader, out io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
	logger := log.FromContext(ctx)

	pty, tty, err := cpty.Open()
	if err != nil {
		return err
	}
	defer func() { _ = pty.Close() }()
	ttyOpen := true
	defer func() {
		if ttyOpen {
			_ = tty.Close()
		}
	}()

	if resize != nil {
		go func() {
			for size := range resize {
				err := cpty.Setsize(pty, &cpty.Winsize{Rows: size.Height, Cols: size.Width})
				if err != nil {
					logger.Error("failed to resize pty", "err", err)
				}
			}
		}()
	}
	if in != nil {
		go func() {
			_, _ = io.Copy(pty, in)
		}()
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		// Ends (EIO) once no process holds the terminal open any more.
		_, _ = io.Copy(out, pty)
	}()

	ctx = utilsexec.KubeTestenvWithControllingTerminal(ctx)
	ctx = utilsexec.WithIOStreams(ctx, utilsexec.IOStreams{In: tty, Out: tty, ErrOut: tty})
	err = utilsexec.Exec(ctx, cmd[0], cmd[1:]...)

	// Our copy of the terminal must not keep the output copy waiting.
	_ = tty.Close()
	ttyOpen = false
	select {
	case <-drained:
	case <-ctx.Done():
	case <-time.After(kubeTestenvTTYDrain):
	}
	if err != nil {
		return kubeTestenvExitCode(err)
	}
	return nil
}
