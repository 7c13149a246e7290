// Command grpc-go-anchor serves grpc-go's stock health service (health.NewServer) for the
// dubbo-health benchmark. It registers the names given with -set NAME=STATUS, prints
// "listening ADDR" on stderr once bound, and reads "set NAME STATUS" / "clear NAME"
// lines on stdin ("" is the empty name). It exits when stdin closes.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func unquote(name string) string {
	if name == `""` {
		return ""
	}
	return name
}

func parseStatus(s string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	v, ok := healthpb.HealthCheckResponse_ServingStatus_value[strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("unknown status %q", s)
	}
	return healthpb.HealthCheckResponse_ServingStatus(v), nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	var sets setFlags
	flag.Var(&sets, "set", "NAME=STATUS to register (repeatable)")
	flag.Parse()

	hs := health.NewServer()
	for _, kv := range sets {
		name, st, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "bad -set %q: want NAME=STATUS\n", kv)
			os.Exit(1)
		}
		status, err := parseStatus(st)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		hs.SetServingStatus(unquote(name), status)
	}

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	fmt.Fprintf(os.Stderr, "listening %s\n", lis.Addr())
	go func() {
		if err := srv.Serve(lis); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}()

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "set":
			status, err := parseStatus(f[2])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				continue
			}
			hs.SetServingStatus(unquote(f[1]), status)
		case len(f) == 2 && f[0] == "clear":
			hs.SetServingStatus(unquote(f[1]), healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
		case len(f) == 0:
		default:
			fmt.Fprintf(os.Stderr, "unknown command %q\n", sc.Text())
		}
	}
	srv.Stop()
}
