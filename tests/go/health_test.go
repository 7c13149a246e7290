// Interop tests of `dubbo-health serve` with grpc-go and grpc-health-probe.
//
// Run with DUBBO_HEALTH_BIN set to the dubbo-health binary and grpc-health-probe on PATH
// (`make test-tonic` does both). A missing binary fails the tests; nothing is skipped.
package healthinterop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking (Watch)
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const greeter = "org.apache.dubbogo.samples.api.Greeter"

// timeout bounds every wait in these tests.
const timeout = 10 * time.Second

type server struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	answer *bufio.Scanner
	addr   string
}

func binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DUBBO_HEALTH_BIN")
	if bin == "" {
		t.Fatal("DUBBO_HEALTH_BIN is not set (path to the dubbo-health binary)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("DUBBO_HEALTH_BIN: %v", err)
	}
	return bin
}

func probe(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("grpc-health-probe")
	if err != nil {
		t.Fatalf("grpc-health-probe not found on PATH (ci/install-20-tonic.sh installs it): %v", err)
	}
	return path
}

// startServer runs `dubbo-health serve --control-stdin` with the seed's Greeter SERVING.
func startServer(t *testing.T) *server {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0", "--control-stdin",
		"--set", greeter+"=SERVING")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "listening ")
		if !ok {
			t.Fatalf("expected `listening ADDR`, got %q", line)
		}
		return &server{cmd: cmd, stdin: stdin, answer: bufio.NewScanner(stdout), addr: addr}
	case <-time.After(timeout):
		t.Fatal("server did not report its address")
	}
	return nil
}

// control sends one stdin command and waits for its answer line.
func (s *server) control(t *testing.T, command string) {
	t.Helper()
	if _, err := fmt.Fprintln(s.stdin, command); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		if s.answer.Scan() {
			done <- s.answer.Text()
		} else {
			done <- "error: stdout closed"
		}
	}()
	select {
	case answer := <-done:
		if !strings.HasPrefix(answer, "ok") {
			t.Fatalf("%q: %s", command, answer)
		}
	case <-time.After(timeout):
		t.Fatalf("%q: no answer", command)
	}
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestSeedCheck is the seed scenario: a grpc-go client checks the Greeter.
func TestSeedCheck(t *testing.T) {
	s := startServer(t)
	client := healthpb.NewHealthClient(dial(t, s.addr))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: greeter})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check(%s) = %v, %v; want SERVING", greeter, resp, err)
	}
	resp, err = client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf(`Check("") = %v, %v; want SERVING`, resp, err)
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "not.registered"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check(unknown) error = %v; want NotFound", err)
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: strings.Repeat("x", 201)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Check(201-byte name) error = %v; want InvalidArgument", err)
	}

	list, err := client.List(ctx, &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := list.GetStatuses()[greeter].GetStatus(); got != healthpb.HealthCheckResponse_SERVING || len(list.GetStatuses()) != 2 {
		t.Fatalf("List = %v", list.GetStatuses())
	}
}

func recv(t *testing.T, stream healthpb.Health_WatchClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	got := make(chan error, 1)
	var resp *healthpb.HealthCheckResponse
	go func() {
		var err error
		resp, err = stream.Recv()
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Watch Recv: %v", err)
		}
		if resp.GetStatus() != want {
			t.Fatalf("Watch sent %v; want %v", resp.GetStatus(), want)
		}
	case <-time.After(timeout):
		t.Fatalf("no Watch message; want %v", want)
	}
}

// TestWatch follows a status through changes, and an unknown name through registration.
func TestWatch(t *testing.T) {
	s := startServer(t)
	client := healthpb.NewHealthClient(dial(t, s.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 4*timeout)
	defer cancel()

	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: greeter})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, stream, healthpb.HealthCheckResponse_SERVING)
	s.control(t, "toggle "+greeter)
	recv(t, stream, healthpb.HealthCheckResponse_NOT_SERVING)
	s.control(t, "toggle "+greeter)
	recv(t, stream, healthpb.HealthCheckResponse_SERVING)

	later, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "group/org.apache.Foo:1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, later, healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
	s.control(t, "set group/org.apache.Foo:1.0.0 SERVING")
	recv(t, later, healthpb.HealthCheckResponse_SERVING)
	s.control(t, "clear group/org.apache.Foo:1.0.0")
	recv(t, later, healthpb.HealthCheckResponse_SERVICE_UNKNOWN)

	// Drain: SIGTERM sends NOT_SERVING, then the stream ends.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	recv(t, stream, healthpb.HealthCheckResponse_NOT_SERVING)
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) && status.Code(err) != codes.Unavailable {
		t.Fatalf("after the drain Watch returned %v; want the end of the stream", err)
	}
}

// TestClientSideHealthChecking uses grpc-go's own health checking (it Watches the service
// named in the service config): RPCs fail while the Greeter is NOT_SERVING and work again
// once it is SERVING.
func TestClientSideHealthChecking(t *testing.T) {
	s := startServer(t)
	config := fmt.Sprintf(`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":%q}}`, greeter)
	conn := dial(t, s.addr, grpc.WithDefaultServiceConfig(config))
	client := healthpb.NewHealthClient(conn)

	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	waitFor := func(ok bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			err := call()
			if (err == nil) == ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("RPCs never became ok=%v (last error %v)", ok, err)
			}
		}
	}
	waitFor(true)
	s.control(t, "set "+greeter+" NOT_SERVING")
	waitFor(false)
	if err := call(); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("RPC on an unhealthy backend: %v", err)
	}
	s.control(t, "set "+greeter+" SERVING")
	waitFor(true)
}

func exitCode(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("%s %v: %v", name, args, err)
		return -1, ""
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestProbeExitCodes: grpc-health-probe exits 0/4/3/2, and `dubbo-health check` with the same
// flags exits the same way.
func TestProbeExitCodes(t *testing.T) {
	s := startServer(t)
	probeBin := probe(t)
	ours := binary(t)
	dead := closedPort(t)

	cases := []struct {
		name    string
		command string // control command run first, if any
		args    []string
		want    int
	}{
		{"server SERVING", "", []string{"-addr=" + s.addr}, 0},
		{"Greeter SERVING", "", []string{"-addr=" + s.addr, "-service", greeter}, 0},
		{"Greeter SERVING (= form)", "", []string{"-addr", s.addr, "-service=" + greeter}, 0},
		{"gzip request", "", []string{"-addr=" + s.addr, "-service", greeter, "-gzip"}, 0},
		{"Greeter NOT_SERVING", "set " + greeter + " NOT_SERVING", []string{"-addr=" + s.addr, "-service", greeter}, 4},
		{"Greeter UNKNOWN", "set " + greeter + " UNKNOWN", []string{"-addr=" + s.addr, "-service", greeter}, 4},
		{"server shut down", "shutdown", []string{"-addr=" + s.addr}, 4},
		{"unknown service", "resume", []string{"-addr=" + s.addr, "-service", "not.registered"}, 3},
		{"closed port", "", []string{"-addr=" + dead, "-connect-timeout", "500ms"}, 2},
		{"no address", "", []string{"-service", greeter}, 1},
	}
	for _, c := range cases {
		if c.command != "" {
			s.control(t, c.command)
		}
		got, out := exitCode(t, probeBin, c.args...)
		if got != c.want {
			t.Errorf("%s: grpc-health-probe %v exited %d, want %d\n%s", c.name, c.args, got, c.want, out)
		}
		gotOurs, outOurs := exitCode(t, ours, append([]string{"check"}, c.args...)...)
		if gotOurs != got {
			t.Errorf("%s: dubbo-health check %v exited %d, grpc-health-probe %d\n%s", c.name, c.args, gotOurs, got, outOurs)
		}
	}
}

// TestGreeterHostExample runs tonic-adapter/cli/examples/greeter_host (GREETER_HOST_BIN) and
// follows the Greeter's flips with a grpc-go Watch, then probes it.
func TestGreeterHostExample(t *testing.T) {
	bin := os.Getenv("GREETER_HOST_BIN")
	if bin == "" {
		t.Fatal("GREETER_HOST_BIN is not set (path to the greeter_host example binary)")
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--flip-every", "0.2", "--flips", "50")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addrs <- addr
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrs:
	case <-time.After(timeout):
		t.Fatal("greeter_host did not report its address")
	}

	client := healthpb.NewHealthClient(dial(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: greeter})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// Every later message is a flip: the status alternates.
	previous := first.GetStatus()
	for i := 0; i < 3; i++ {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() == previous {
			t.Fatalf("Watch repeated %v", previous)
		}
		previous = resp.GetStatus()
	}
	if code, out := exitCode(t, probe(t), "-addr="+addr); code != 0 {
		t.Fatalf("grpc-health-probe on greeter_host exited %d: %s", code, out)
	}
}
