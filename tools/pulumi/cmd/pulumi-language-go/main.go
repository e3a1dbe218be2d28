// Command pulumi-language-go is a small Pulumi language host for Go programs, used by
// datera-iac's tests and CI (see tools/pulumi/README.md: Pulumi's own host is a Go module
// the Go module proxy refuses).
//
// Run builds the program with `go build` (or runs the prebuilt `binary` of the project's
// runtime options) and executes it with the PULUMI_* environment the Go SDK reads, as
// Pulumi's host does; GeneratePackage is `pulumi package gen-sdk --language go` through
// pkg/v3's Go code generator; InstallDependencies is `go mod tidy`. Not implemented:
// GenerateProgram/Project (convert), Pack, Link, templates, debugging.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"google.golang.org/grpc"

	"github.com/datera/datera-iac/tools/pulumi/internal/langhost"
	codegen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/constant"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is stamped by build.sh (-X main.version=...).
var version = "0.0.0"

type host struct {
	langhost.Base
}

// build compiles the program in dir into a temporary executable.
func build(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	out, err := os.CreateTemp("", "pulumi-go-program-*")
	if err != nil {
		return "", err
	}
	out.Close()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out.Name(), ".")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out.Name())
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("cannot find go on PATH: install the Go toolchain")
		}
		return "", fmt.Errorf("go build in %s failed: %w", dir, err)
	}
	return out.Name(), nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	dir := langhost.ProgramDir(req.GetInfo(), req.GetPwd())
	var stderr langhost.Tail
	errOut := io.MultiWriter(os.Stderr, &stderr)
	program, _ := req.GetInfo().GetOptions().AsMap()["binary"].(string)
	if program != "" {
		if !filepath.IsAbs(program) {
			program = filepath.Join(req.GetInfo().GetRootDirectory(), program)
		}
	} else {
		built, err := build(ctx, dir, errOut)
		if err != nil {
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("%v\n%s", err, stderr.String())}, nil
		}
		defer os.Remove(built)
		program = built
	}
	config, secretKeys, err := langhost.Config(req)
	if err != nil {
		return nil, err
	}
	env := os.Environ()
	set := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	set("PULUMI_ORGANIZATION", req.GetOrganization())
	set("PULUMI_PROJECT", req.GetProject())
	set("PULUMI_ROOT_DIRECTORY", req.GetInfo().GetRootDirectory())
	set("PULUMI_STACK", req.GetStack())
	set("PULUMI_CONFIG", config)
	set("PULUMI_CONFIG_SECRET_KEYS", secretKeys)
	set("PULUMI_DRY_RUN", strconv.FormatBool(req.GetDryRun()))
	set("PULUMI_PARALLEL", strconv.Itoa(int(req.GetParallel())))
	set("PULUMI_MONITOR", req.GetMonitorAddress())
	set("PULUMI_ENGINE", h.Engine())
	cmd := exec.CommandContext(ctx, program)
	cmd.Dir = req.GetPwd()
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = errOut
	return langhost.Exit("Go", cmd.Run(), constant.ExitStatusLoggedError, &stderr), nil
}

func (h *host) GeneratePackage(ctx context.Context, req *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	if len(req.GetExtraFiles()) > 0 {
		return nil, errors.New("overlays are not supported for Go")
	}
	return langhost.Generate(req, func(pkg *schema.Package, req *pulumirpc.GeneratePackageRequest,
		_ schema.ReferenceLoader,
	) (map[string][]byte, error) {
		return codegen.GeneratePackage("pulumi-language-go", pkg, req.GetLocalDependencies())
	})
}

// InstallDependencies runs `go mod tidy` in the program's directory.
func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	srv grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	cmd := exec.CommandContext(srv.Context(), "go", "mod", "tidy")
	cmd.Dir = langhost.ProgramDir(req.GetInfo(), req.GetDirectory())
	cmd.Stdout = &langhost.Stream{Srv: srv}
	cmd.Stderr = &langhost.Stream{Srv: srv, Stderr: true}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go mod tidy in %s: %w", cmd.Dir, err)
	}
	return nil
}

func main() {
	h := &host{Base: langhost.Base{Version: version}}
	langhost.Serve("pulumi-language-go", &h.Base, h)
}
