//go:build !windows

// Added to sigs.k8s.io/kwok/pkg/kwok/server when kube-testenv builds kwok
// (see kube-testenv/src/binaries.rs): our code, not upstream's.
//
// KWOK v0.8.0's attach has no process behind it: it follows the
// container's log file and ignores stdin and terminal resizes. When the
// attach rule's logsFile names a Unix socket instead of a file, this
// connects the attach to the process that kube-testenv runs behind that
// socket (ControlPlane::attach_pod_process), as a kubelet connects an
// attach to a container's main process:
//   - from KWOK to the process, frames: one byte kind, a 4-byte big-endian
//     length, the payload; kind 0 is stdin bytes, kind 4 a terminal size
//     (width then height, 2-byte big-endian each);
//   - from the process to KWOK, its terminal's output as it comes; its end
//     (the process exited) ends the attach.

package server

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"sync"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// kubeTestenvIsSocket reports whether path names a Unix socket.
func kubeTestenvIsSocket(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode()&os.ModeSocket != 0
}

// kubeTestenvAttachProcess relays one attach to the process behind the
// socket at path until its output ends or the client goes.
func kubeTestenvAttachProcess(ctx context.Context, path string, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()

	var writing sync.Mutex
	send := func(kind byte, payload []byte) error {
		writing.Lock()
		defer writing.Unlock()
		frame := make([]byte, 5, 5+len(payload))
		frame[0] = kind
		binary.BigEndian.PutUint32(frame[1:], uint32(len(payload)))
		_, err := conn.Write(append(frame, payload...))
		return err
	}
	if resize != nil {
		go func() {
			for size := range resize {
				payload := make([]byte, 4)
				binary.BigEndian.PutUint16(payload, size.Width)
				binary.BigEndian.PutUint16(payload[2:], size.Height)
				if send(4, payload) != nil {
					return
				}
			}
		}()
	}
	if in != nil {
		go func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := in.Read(buf)
				if n > 0 && send(0, buf[:n]) != nil {
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()
	if out == nil {
		out = io.Discard
	}
	// The process's end, or the client's (the connection closed above).
	_, _ = io.Copy(out, conn)
	return nil
}
