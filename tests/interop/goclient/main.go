// Command goclient is the grpc-go peer of the interop suite: it speaks grpc.health.v1 through
// grpc-go's generated health client and grpc-go's client-side health checking.
//
// Output protocol (shared with the Node and Python peers, parsed by tests/interop/clients.py):
//
//	check  -addr A -service S [-gzip] one line: a status name (SERVING, ...) or "ERROR <CODE> <message>"
//	watch  -addr A -service S        one line per message, "END <CODE> <message>" when the stream
//	       [-count K] [-timeout D]   ends, "TIMEOUT" when D elapses first; exits after K messages
//	list   -addr A                   one line: a JSON object name -> status, or "ERROR <CODE> <message>"
//	clienthealth -addr A -service S  a round_robin channel with healthCheckConfig{serviceName: S};
//	       [-timeout D]              probes the channel with Check("") every 20 ms and prints "UP" when
//	                                 RPCs succeed and "DOWN <CODE>" when they fail, on every change
//
//	storm -addr A -service S -n N    opens N Watch streams, -batch at a time spread over -conns
//	       [-batch B] [-conns C]        connections, waits for each one's first message, cancels
//	                                    them; prints "OK <N> <elapsed>" or "FAIL <reason>"
//
// The exit code is 0 whenever the RPC produced an answer (even an error status) and 2 for bad
// arguments, so the harness judges answers, not exit codes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	_ "google.golang.org/grpc/health" // registers client-side health checking
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := fs.String("addr", "", "host:port of the health server")
	service := fs.String("service", "", "service name")
	count := fs.Int("count", 0, "watch: exit after this many messages (0 = no limit)")
	timeout := fs.Duration("timeout", 10*time.Second, "overall time limit")
	total := fs.Int("n", 5000, "storm: Watch streams to open and cancel in all")
	batch := fs.Int("batch", 500, "storm: Watch streams open at the same time")
	conns := fs.Int("conns", 4, "storm: connections the streams are spread over")
	useGzip := fs.Bool("gzip", false, "check: gzip-compress the request")
	rpcTimeout := fs.Duration("rpc-timeout", 5*time.Second, "per-RPC deadline for check/list")
	if err := fs.Parse(os.Args[2:]); err != nil || *addr == "" {
		usage()
	}
	switch mode {
	case "check":
		conn := dial(*addr, "")
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *rpcTimeout)
		defer cancel()
		var callOpts []grpc.CallOption
		if *useGzip {
			callOpts = append(callOpts, grpc.UseCompressor(gzip.Name))
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service}, callOpts...)
		if err != nil {
			printErr(err)
			return
		}
		fmt.Println(resp.GetStatus().String())
	case "list":
		conn := dial(*addr, "")
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *rpcTimeout)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).List(ctx, &healthpb.HealthListRequest{})
		if err != nil {
			printErr(err)
			return
		}
		out := map[string]string{}
		for name, st := range resp.GetStatuses() {
			out[name] = st.GetStatus().String()
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	case "watch":
		conn := dial(*addr, "")
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: *service})
		if err != nil {
			printEnd(ctx, err)
			return
		}
		for n := 0; *count == 0 || n < *count; n++ {
			resp, err := stream.Recv()
			if err != nil {
				printEnd(ctx, err)
				return
			}
			fmt.Println(resp.GetStatus().String())
		}
	case "clienthealth":
		clientHealth(*addr, *service, *timeout)
	case "storm":
		storm(*addr, *service, *total, *batch, *conns, *timeout)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: goclient check|watch|list|clienthealth -addr HOST:PORT [-service NAME] [-count K] [-timeout D]")
	os.Exit(2)
}

func dial(addr, serviceConfig string) *grpc.ClientConn {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if serviceConfig != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(serviceConfig))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(2)
	}
	return conn
}

func printErr(err error) {
	st := status.Convert(err)
	fmt.Printf("ERROR %s %s\n", codeName(st.Code()), st.Message())
}

func printEnd(ctx context.Context, err error) {
	if ctx.Err() == context.DeadlineExceeded {
		fmt.Println("TIMEOUT")
		return
	}
	st := status.Convert(err)
	fmt.Printf("END %s %s\n", codeName(st.Code()), st.Message())
}

// codeName spells a code as the gRPC spec does (NOT_FOUND), not as grpc-go's String (NotFound).
func codeName(c codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
		codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
		codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// clientHealth runs grpc-go's client-side health checking: with healthCheckConfig the channel
// opens a Watch on the service for each subchannel and stops routing to a subchannel whose
// status is not SERVING, so RPCs fail with UNAVAILABLE until the service is SERVING again.
func clientHealth(addr, service string, timeout time.Duration) {
	cfg, _ := json.Marshal(map[string]any{
		"loadBalancingConfig": []any{map[string]any{"round_robin": map[string]any{}}},
		"healthCheckConfig":   map[string]any{"serviceName": service},
	})
	conn := dial(addr, string(cfg))
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: ""})
		cancel()
		state := "UP"
		if err != nil {
			state = "DOWN " + codeName(status.Code(err))
		}
		if state != last {
			fmt.Println(state)
			last = state
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("TIMEOUT")
}

// storm opens and cancels many Watch streams: each must deliver its first message before it
// is cancelled, so the server really set every one of them up.
func storm(addr, service string, total, batch, conns int, timeout time.Duration) {
	clients := make([]healthpb.HealthClient, conns)
	for i := range clients {
		conn := dial(addr, "")
		defer conn.Close()
		clients[i] = healthpb.NewHealthClient(conn)
	}
	start := time.Now()
	ctx, cancelAll := context.WithTimeout(context.Background(), timeout)
	defer cancelAll()
	for opened := 0; opened < total; {
		n := min(batch, total-opened)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		cancels := make([]context.CancelFunc, n)
		for i := 0; i < n; i++ {
			sctx, cancel := context.WithCancel(ctx)
			cancels[i] = cancel
			wg.Add(1)
			go func(c healthpb.HealthClient) {
				defer wg.Done()
				stream, err := c.Watch(sctx, &healthpb.HealthCheckRequest{Service: service})
				if err == nil {
					_, err = stream.Recv()
				}
				if err != nil {
					errs <- err
				}
			}(clients[(opened+i)%conns])
		}
		wg.Wait()
		for _, cancel := range cancels {
			cancel()
		}
		close(errs)
		if err, ok := <-errs; ok {
			st := status.Convert(err)
			fmt.Printf("FAIL after %d streams: %s %s\n", opened, codeName(st.Code()), st.Message())
			return
		}
		opened += n
	}
	fmt.Printf("OK %d %s\n", total, time.Since(start).Round(time.Millisecond))
}
