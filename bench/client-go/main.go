// Command bench-client-go is the client-go side of `cargo xtask bench`: a
// SharedIndexInformer (from a SharedInformerFactory, resync off) over the
// ConfigMaps (or Pods) of one namespace, as client-go's users build one, with
// default settings (the feature gates' defaults: WatchListClient, AtomicFIFO)
// and the encoding of BENCH_ENCODING: json (client-go's default) or protobuf
// (ContentType application/vnd.kubernetes.protobuf, JSON accepted as the
// fallback, as Kubernetes' own controllers run).
//
// It speaks the protocol of bench/common/src/lib.rs:
//
//	bench-client-go --kubeconfig PATH --namespace NS --objects N --mods M [--timeout-secs S] [--resource configmaps|pods]
//
// prints {"event":"synced",...} when the informer has synced (its
// HasSyncedChecker is done), then obeys "relist", "mods" and "exit" on stdin.
// A relist is complete when the informer's store holds the relisted objects:
// the objects of a relist are new values, and with AtomicFIFO the store is
// replaced in one step, so the first key's object changes identity exactly
// then (without AtomicFIFO every key's object must have changed). A change
// is an update whose resourceVersion differs, as its handlers see it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/features"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(os.Stdout, string(b))
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	namespace := flag.String("namespace", "", "namespace of the ConfigMaps")
	flag.Int64("objects", 0, "how many ConfigMaps there are (informational)")
	mods := flag.Int64("mods", 0, "how many changes the mods phase makes")
	timeoutSecs := flag.Int("timeout-secs", 600, "bound on every wait")
	resource := flag.String("resource", "configmaps", "configmaps or pods")
	flag.Parse()
	// Keep stderr quiet unless something goes wrong.
	klog.SetOutput(os.Stderr)
	if err := run(*kubeconfig, *namespace, *resource, *mods, time.Duration(*timeoutSecs)*time.Second); err != nil {
		emit(map[string]any{"event": "error", "message": err.Error()})
		os.Exit(1)
	}
}

func run(kubeconfig, namespace, resource string, mods int64, timeout time.Duration) error {
	if kubeconfig == "" || namespace == "" {
		return errors.New("--kubeconfig and --namespace are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	switch enc := os.Getenv("BENCH_ENCODING"); enc {
	case "", "json":
	case "protobuf":
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	default:
		return fmt.Errorf("BENCH_ENCODING=%s: expected json or protobuf", enc)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(namespace))
	var informer cache.SharedIndexInformer
	switch resource {
	case "configmaps":
		informer = factory.Core().V1().ConfigMaps().Informer()
	case "pods":
		informer = factory.Core().V1().Pods().Informer()
	default:
		return fmt.Errorf("unknown resource %q; expected configmaps or pods", resource)
	}

	var modified, want atomic.Int64
	want.Store(math.MaxInt64)
	reached := make(chan struct{}, 1)
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, err1 := meta.Accessor(oldObj)
			n, err2 := meta.Accessor(newObj)
			if err1 != nil || err2 != nil || o.GetResourceVersion() == n.GetResourceVersion() {
				return
			}
			if modified.Add(1) >= want.Load() {
				select {
				case reached <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		return err
	}
	baseline, err := statusKiB("VmRSS:")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())

	select {
	case <-informer.HasSyncedChecker().Done():
	case <-time.After(timeout):
		return fmt.Errorf("initial sync: not done after %v", timeout)
	}
	elapsed, err := sinceProcessStartMs()
	if err != nil {
		return err
	}
	store := informer.GetStore()
	peak, err := statusKiB("VmHWM:")
	if err != nil {
		return err
	}
	rss, err := statusKiB("VmRSS:")
	if err != nil {
		return err
	}
	emit(map[string]any{
		"event":            "synced",
		"elapsed_ms":       elapsed,
		"peak_rss_kib":     peak,
		"rss_kib":          rss,
		"baseline_rss_kib": baseline,
		"cpu_ms":           cpuMs(),
		"objects":          len(store.ListKeys()),
		"watch_list":       features.FeatureGates().Enabled(features.WatchListClient),
		"atomic_fifo":      features.FeatureGates().Enabled(features.AtomicFIFO),
	})

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch strings.TrimSpace(in.Text()) {
		case "relist":
			if err := relist(store, timeout); err != nil {
				return err
			}
		case "mods":
			base := modified.Load()
			target := base + mods
			want.Store(target)
			select {
			case <-reached:
			default:
			}
			cpu0 := cpuMs()
			start := time.Now()
			emit(map[string]any{"event": "mods_armed"})
			deadline := time.After(timeout)
			for modified.Load() < target {
				select {
				case <-reached:
				case <-deadline:
					return fmt.Errorf("watching the changes: not done after %v (%d of %d)", timeout, modified.Load()-base, mods)
				}
			}
			cpu := cpuMs() - cpu0
			wall := float64(time.Since(start).Microseconds()) / 1e3
			want.Store(math.MaxInt64)
			peak, err := statusKiB("VmHWM:")
			if err != nil {
				return err
			}
			emit(map[string]any{
				"event":        "watched",
				"events":       modified.Load() - base,
				"cpu_ms":       cpu,
				"wall_ms":      wall,
				"peak_rss_kib": peak,
			})
		case "exit":
			return nil
		case "":
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
	}
	return in.Err()
}

// relist waits until the store holds the objects of a second complete list.
func relist(store cache.Store, timeout time.Duration) error {
	keys := store.ListKeys()
	if len(keys) == 0 {
		return errors.New("relist: the store is empty")
	}
	atomicFIFO := features.FeatureGates().Enabled(features.AtomicFIFO)
	// Without AtomicFIFO objects are replaced one by one: remember them all.
	var before map[string]any
	if !atomicFIFO {
		before = make(map[string]any, len(keys))
		for _, k := range keys {
			obj, _, _ := store.GetByKey(k)
			before[k] = obj
		}
	}
	first, _, _ := store.GetByKey(keys[0])

	steady, err := statusKiB("VmRSS:")
	if err != nil {
		return err
	}
	peak := startPeak()
	start := time.Now()
	emit(map[string]any{"event": "relist_armed", "steady_rss_kib": steady, "peak_reset": peak.hwm})
	deadline := time.Now().Add(timeout)
	for {
		cur, ok, _ := store.GetByKey(keys[0])
		if ok && cur != first {
			if atomicFIFO || allReplaced(store, before) {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("relist: not done after %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	relistMs := float64(time.Since(start).Microseconds()) / 1e3
	peakKiB, err := peak.finish()
	if err != nil {
		return err
	}
	emit(map[string]any{
		"event":          "relisted",
		"peak_rss_kib":   peakKiB,
		"steady_rss_kib": steady,
		"relist_ms":      relistMs,
		"objects":        len(store.ListKeys()),
	})
	return nil
}

func allReplaced(store cache.Store, before map[string]any) bool {
	for k, old := range before {
		if cur, ok, _ := store.GetByKey(k); ok && cur == old {
			return false
		}
	}
	return true
}

// peakTracker: VmHWM after a reset, or VmRSS sampled every 2 ms where the
// kernel refuses the reset.
type peakTracker struct {
	hwm  bool
	stop chan struct{}
	done chan int64
}

func startPeak() *peakTracker {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
		return &peakTracker{hwm: true}
	}
	p := &peakTracker{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		for {
			if v, err := statusKiB("VmRSS:"); err == nil && v > peak {
				peak = v
			}
			select {
			case <-p.stop:
				p.done <- peak
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *peakTracker) finish() (int64, error) {
	if p.hwm {
		return statusKiB("VmHWM:")
	}
	close(p.stop)
	return <-p.done, nil
}

func statusKiB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

func cpuMs() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ms := func(tv syscall.Timeval) float64 { return float64(tv.Sec)*1e3 + float64(tv.Usec)/1e3 }
	return ms(ru.Utime) + ms(ru.Stime)
}

// sinceProcessStartMs: /proc/self/stat field 22 (starttime, in USER_HZ =
// 100 ticks per second since boot) against CLOCK_BOOTTIME.
func sinceProcessStartMs() (float64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/self/stat")
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 22-2 {
		return 0, errors.New("no starttime in /proc/self/stat")
	}
	ticks, err := strconv.ParseInt(fields[22-3], 10, 64)
	if err != nil {
		return 0, err
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, err
	}
	now := float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
	return now - float64(ticks)*10, nil
}
