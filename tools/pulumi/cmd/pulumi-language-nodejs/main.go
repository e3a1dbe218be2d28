// Command pulumi-language-nodejs is a small Pulumi language host for Node.js/TypeScript
// programs, used by datera-iac's tests and CI (see tools/pulumi/README.md: Pulumi's own
// host is a Go module the Go module proxy refuses).
//
// Run launches `node` on @pulumi/pulumi's run entry (`@pulumi/pulumi/cmd/run`, resolved
// from the program's node_modules, as Pulumi's host does) with the flags and PULUMI_*
// settings the engine passes; GeneratePackage is `pulumi package gen-sdk --language
// nodejs` through pkg/v3's Node.js code generator; InstallDependencies is `npm install`.
// Not implemented: GenerateProgram/Project (convert), Pack, Link, templates, debugging.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	"github.com/datera/datera-iac/tools/pulumi/internal/langhost"
	codegen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is stamped by build.sh (-X main.version=...).
var version = "0.0.0"

// exitShownMessage: @pulumi/pulumi's run exits with it after reporting the error itself.
const exitShownMessage = 32

const runModule = "@pulumi/pulumi/cmd/run"

type host struct {
	langhost.Base
}

// locate resolves a module the way the program itself would, from its directory.
func locate(node, module, dir string) (string, error) {
	cmd := exec.Command(node, "-e", fmt.Sprintf(
		"console.log(require.resolve(%q, {paths: [process.cwd()]}))", module))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cannot find %s from %s: run `npm install` there "+
			"(the program's package.json must depend on @pulumi/pulumi)", module, dir)
	}
	return strings.TrimSpace(string(out)), nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "cannot find node on PATH: install Node.js"}, nil
	}
	dir := langhost.ProgramDir(req.GetInfo(), req.GetPwd())
	run, err := locate(node, runModule, dir)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	opts := req.GetInfo().GetOptions().AsMap()
	var args []string
	if extra, ok := opts["nodeargs"].(string); ok && extra != "" {
		args = append(args, strings.Fields(extra)...)
	}
	args = append(args, run,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.Engine(),
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", dir,
		"--parallel", strconv.Itoa(int(req.GetParallel())))
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetOrganization() != "" {
		args = append(args, "--organization", req.GetOrganization())
	}
	if root := req.GetInfo().GetRootDirectory(); root != "" {
		args = append(args, "--root-directory", root)
	}
	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	args = append(args, req.GetArgs()...)

	config, secretKeys, err := langhost.Config(req)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG="+config, "PULUMI_CONFIG_SECRET_KEYS="+secretKeys)
	// TypeScript programs run through ts-node unless `typescript: false` (as Pulumi's host)
	if ts, ok := opts["typescript"].(bool); !ok || ts {
		cmd.Env = append(cmd.Env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if p, ok := opts["tsconfig"].(string); ok && p != "" {
		cmd.Env = append(cmd.Env, "PULUMI_NODEJS_TSCONFIG_PATH="+p)
	}
	var stderr langhost.Tail
	// node may switch its stdio to non-blocking: copy through pipes, never hand it ours
	cmd.Stdout = struct{ io.Writer }{os.Stdout}
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	return langhost.Exit("Node.js", cmd.Run(), exitShownMessage, &stderr), nil
}

func (h *host) GeneratePackage(ctx context.Context, req *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	return langhost.Generate(req, func(pkg *schema.Package, req *pulumirpc.GeneratePackageRequest,
		loader schema.ReferenceLoader,
	) (map[string][]byte, error) {
		return codegen.GeneratePackage("pulumi-language-nodejs", pkg, req.GetExtraFiles(),
			req.GetLocalDependencies(), req.GetLocal(), loader)
	})
}

// InstallDependencies runs `npm install` in the program's directory.
func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	srv grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	cmd := exec.CommandContext(srv.Context(), "npm", "install", "--no-fund", "--no-audit")
	cmd.Dir = langhost.ProgramDir(req.GetInfo(), req.GetDirectory())
	cmd.Stdout = &langhost.Stream{Srv: srv}
	cmd.Stderr = &langhost.Stream{Srv: srv, Stderr: true}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm install in %s: %w", cmd.Dir, err)
	}
	return nil
}

func main() {
	h := &host{Base: langhost.Base{Version: version}}
	langhost.Serve("pulumi-language-nodejs", &h.Base, h)
}
