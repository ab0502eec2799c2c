// testapp is the one program inside the in-cluster suite's test images (e2e/src/cluster).
// It is test infrastructure, not product code: a static binary that plays every role the
// suite needs, chosen by its first argument.
//
//	testapp pause                  the pod sandbox ("pause") process: sleeps until SIGTERM
//	testapp serve [--port 8080]    an HTTP app with /healthz, /readyz and /metrics
//	testapp lease --name N         a leader-elected program (client-go leaderelection on a
//	        [--namespace NS]       coordination.k8s.io Lease, in-cluster credentials) that
//	        [--duration 10s]       holds and renews the Lease while it runs, and serves HTTP
//	        [--port 8080]          like `serve` (/readyz answers 200 only while leading)
//	testapp job [--sleep 1s]       a batch step: sleeps, then exits with --exit (default 0)
//	        [--exit N]
//
// Every role exits 0 on SIGTERM so that graceful shutdown is exercised for real.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp pause|serve|lease|job [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "pause":
		<-ctx.Done()
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "lease":
		err = lease(ctx, os.Args[2:])
	case "job":
		err = job(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown role %q (want pause, serve, lease or job)", os.Args[1])
	}
	if err != nil {
		log.Printf("testapp %s: %v", os.Args[1], err)
		os.Exit(1)
	}
}

// httpServer serves the probe and metrics routes until ctx ends; ready decides /readyz.
func httpServer(ctx context.Context, port int, ready func() bool) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE testapp_up gauge\ntestapp_up 1")
	})
	srv := &http.Server{Addr: fmt.Sprintf(":%d", port), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			return err
		}
		return nil
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := fs.Int("port", 8080, "HTTP port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log.Printf("serving on :%d", *port)
	return httpServer(ctx, *port, func() bool { return true })
}

func lease(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lease", flag.ContinueOnError)
	name := fs.String("name", "", "Lease name (required)")
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "Lease namespace")
	duration := fs.Duration("duration", 10*time.Second, "lease duration")
	port := fs.Int("port", 8080, "HTTP port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *namespace == "" {
		return errors.New("--name and --namespace (or POD_NAMESPACE) are required")
	}
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		identity, _ = os.Hostname()
	}
	config, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	var leading atomic.Bool
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: *name, Namespace: *namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	go func() {
		if err := httpServer(ctx, *port, leading.Load); err != nil {
			log.Printf("http: %v", err)
		}
	}()
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *duration,
		RenewDeadline:   *duration * 2 / 3,
		RetryPeriod:     *duration / 5,
		ReleaseOnCancel: true,
		Name:            *name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				leading.Store(true)
				log.Printf("%s leads %s/%s", identity, *namespace, *name)
			},
			OnStoppedLeading: func() {
				leading.Store(false)
				log.Printf("%s stopped leading", identity)
			},
			OnNewLeader: func(id string) { log.Printf("leader is %s", id) },
		},
	})
	return nil
}

func job(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	sleep := fs.Duration("sleep", time.Second, "how long the step runs")
	code := fs.Int("exit", 0, "exit code")
	if err := fs.Parse(args); err != nil {
		return err
	}
	select {
	case <-time.After(*sleep):
	case <-ctx.Done():
	}
	log.Printf("job done, exit %d", *code)
	os.Exit(*code)
	return nil
}
