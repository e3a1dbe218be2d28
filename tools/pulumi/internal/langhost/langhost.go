// Package langhost holds what datera-iac's small Node.js and Go language hosts share: the
// engine handshake, SDK generation through the Pulumi code generators of pkg/v3, the
// program's configuration environment, and serving the LanguageRuntime protocol.
//
// Pulumi's own Node.js and Go language hosts are Go modules that the Go module proxy
// reachable from our machines refuses (403), so the Pulumi CLI we build cannot have them.
// These hosts implement the part of pulumirpc.LanguageRuntime that `pulumi package
// gen-sdk` and `pulumi preview/up/refresh/destroy` of a program need.
package langhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	pbempty "google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Base answers the calls both hosts answer alike. Embed it and add Run, GeneratePackage
// (with Generate) and InstallDependencies.
type Base struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	Version string
	mu      sync.Mutex
	engine  string
}

// Engine is the engine's address, from the command line or the Handshake.
func (b *Base) Engine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.engine
}

func (b *Base) Handshake(ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.GetEngineAddress() != "" {
		b.engine = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (b *Base) GetPluginInfo(context.Context, *pbempty.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: b.Version}, nil
}

// The engine loads a resource plugin when a program first registers one of its
// resources, so nothing has to be declared up front.
func (b *Base) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (b *Base) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// Generator turns a bound package into files (path -> contents), e.g. the nodejs or go
// code generator of github.com/pulumi/pulumi/pkg/v3/codegen.
type Generator func(pkg *schema.Package, req *pulumirpc.GeneratePackageRequest,
	loader schema.ReferenceLoader) (map[string][]byte, error)

// Generate answers GeneratePackage (`pulumi package gen-sdk`) as Pulumi's own hosts do:
// bind the schema (errors come back as diagnostics), generate, write into req.Directory.
func Generate(req *pulumirpc.GeneratePackageRequest, gen Generator,
) (*pulumirpc.GeneratePackageResponse, error) {
	loader, err := schema.NewLoaderClient(req.GetLoaderTarget())
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	var spec schema.PackageSpec
	if err := json.Unmarshal([]byte(req.GetSchema()), &spec); err != nil {
		return nil, fmt.Errorf("the package schema is not valid JSON: %w", err)
	}
	cached := schema.NewCachedLoader(loader)
	pkg, diags, err := schema.BindSpec(spec, cached, schema.ValidationOptions{
		AllowDanglingReferences: true,
	})
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GeneratePackageResponse{Diagnostics: plugin.HclDiagnosticsToRPCDiagnostics(diags)}
	if diags.HasErrors() {
		return resp, nil
	}
	files, err := gen(pkg, req, cached)
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		out := filepath.Join(req.GetDirectory(), name)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// Config returns the PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS values of a run.
func Config(req *pulumirpc.RunRequest) (config, secretKeys string, err error) {
	c, err := json.Marshal(req.GetConfig())
	if err != nil {
		return "", "", err
	}
	keys := req.GetConfigSecretKeys()
	if keys == nil {
		keys = []string{}
	}
	k, err := json.Marshal(keys)
	if err != nil {
		return "", "", err
	}
	return string(c), string(k), nil
}

// ProgramDir is the directory of the program a request names.
func ProgramDir(info *pulumirpc.ProgramInfo, fallback string) string {
	if info != nil && info.GetProgramDirectory() != "" {
		return info.GetProgramDirectory()
	}
	return fallback
}

// Exit turns a program's exit into a RunResponse: 0 is success, bailCode means the
// program already reported its error to the engine (bail without a second message).
func Exit(lang string, err error, bailCode int, stderr *Tail) *pulumirpc.RunResponse {
	if err == nil {
		return &pulumirpc.RunResponse{}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if exit.ExitCode() == bailCode {
			return &pulumirpc.RunResponse{Bail: true}
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf(
			"%s program exited with code %d:\n%s", lang, exit.ExitCode(), stderr.String())}
	}
	return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run the %s program: %v", lang, err)}
}

// Stream sends a command's output to an InstallDependencies stream.
type Stream struct {
	mu     sync.Mutex
	Srv    grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]
	Stderr bool
}

func (s *Stream) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &pulumirpc.InstallDependenciesResponse{}
	if s.Stderr {
		r.Stderr = append([]byte(nil), b...)
	} else {
		r.Stdout = append([]byte(nil), b...)
	}
	if err := s.Srv.Send(r); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Tail keeps the last 8 KiB written, for the error message of a failed program.
type Tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *Tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if n := len(t.buf); n > 8192 {
		t.buf = t.buf[n-8192:]
	}
	return len(b), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Serve registers srv, prints the port for the engine and serves until the engine
// disconnects. base receives the engine address the engine passes as the last argument.
func Serve(name string, base *Base, srv pulumirpc.LanguageRuntimeServer) {
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") && strings.Contains(a, ":") {
			base.engine = a
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, srv)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
