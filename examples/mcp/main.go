// Command mcp serves a Heddle mesh's worker types and pipelines to MCP
// clients (a desktop assistant, an IDE, an agent) as tools: a gateway
// built with package mcp from a config in the Python Heddle's shape.
//
// Without -nats it runs the whole mesh in this process, on the in-memory
// bus: the gateway, the greeter worker and the one-stage "greeting"
// pipeline, so that an MCP client can start it as a local server with
// no NATS at all:
//
//	go run ./examples/mcp                       # MCP over stdin and stdout
//
// With -nats it runs the gateway alone, for the workers and pipelines of
// a mesh on that NATS (go run ./examples/worker serves the greeter):
//
//	go run ./examples/mcp -nats nats://127.0.0.1:4222 -config gateway.yaml
//	go run ./examples/mcp -nats nats://127.0.0.1:4222 -http 127.0.0.1:8000
//
// With -http it serves MCP's streamable HTTP transport on that address,
// at /mcp, and prints the endpoint's URL on standard output once it
// listens; it serves until SIGINT or SIGTERM. Over stdio it serves one
// client until the client closes its end (or a signal). Standard output
// is the protocol's then: everything else goes to standard error.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/mcp"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/worker"
)

// defaultConfig is gateway.yaml, the config used without -config.
//
//go:embed gateway.yaml
var defaultConfig []byte

// GreetIn is the greeter's input contract (that of examples/worker).
type GreetIn struct {
	Name string `json:"name" jsonschema:"minLength=1"`
}

// GreetOut is the greeter's output contract.
type GreetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ context.Context, in GreetIn) (GreetOut, error) {
	return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
}

func main() {
	natsURL := flag.String("nats", "", "NATS server URL; empty runs the greeter and the greeting pipeline in this process, on membus")
	configPath := flag.String("config", "", "gateway config file (YAML); empty means the example's gateway.yaml")
	httpAddr := flag.String("http", "", "serve streamable HTTP on this host:port instead of stdio")
	flag.Parse()
	// Over stdio, standard output carries the protocol: log elsewhere.
	log.SetOutput(os.Stderr)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))

	cfg, err := mcp.ParseConfig(defaultConfig)
	if *configPath != "" {
		cfg, err = mcp.LoadConfig(*configPath)
	}
	if err != nil {
		log.Fatal(err)
	}
	if *httpAddr != "" {
		cfg.Transport, cfg.Addr = mcp.TransportStreamableHTTP, *httpAddr
	}

	var b bus.Bus
	var actors []heddle.Actor
	if *natsURL == "" {
		b = membus.New()
		actors, err = localMesh(b)
	} else {
		b, err = natsbus.Connect(*natsURL)
	}
	if err != nil {
		log.Fatal(err)
	}
	g, err := mcp.New(b, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if cfg.Transport == mcp.TransportStreamableHTTP {
		go func() {
			<-g.Ready()
			fmt.Printf("serving MCP on http://%s%s\n", g.Addr(), mcp.HTTPPath)
		}()
	}
	// Until a signal; over stdio also until the client leaves, when the
	// gateway's Run returns and ends the other actors' too.
	ctx, leave := context.WithCancel(context.Background())
	err = heddle.Serve(ctx, append(actors, endsAll{g, leave})...)
	leave()
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// endsAll is an actor whose return ends Serve's context: the process
// ends with it.
type endsAll struct {
	*mcp.Gateway
	end context.CancelFunc
}

func (a endsAll) Run(ctx context.Context) error {
	defer a.end()
	return a.Gateway.Run(ctx)
}

// localMesh returns the actors the default config's tools call, on b:
// the greeter and the greeting pipeline, which sends its stage straight
// to the greeter.
func localMesh(b bus.Bus) ([]heddle.Actor, error) {
	w, err := worker.New(b, "greeter", greet, worker.Config{})
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(b, pipeline.Config{
		Name:          "greeting",
		Direct:        true,
		AddressedOnly: true,
		Stages: []pipeline.Stage{{
			Name: "greet", WorkerType: "greeter", InputMapping: map[string]string{"name": "goal.context.name"},
		}},
	})
	if err != nil {
		return nil, err
	}
	return []heddle.Actor{w, p}, nil
}
