package heddle_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// rootNameBudget is how many package-level names the root may export,
// each constant and function counted: it holds the vocabulary every
// package shares (messages, enums, subjects, the liveness defaults that
// workers and registries share); the reason kinds live in package event,
// and plumbing in internal/. rootDocBudget bounds the lines
// `go doc -short .` lists (a const block is one line; a type and each of
// its constructors one each).
const (
	rootNameBudget = 80
	rootDocBudget  = 80
)

func TestGoDocListsNoMoreThanItsBudgetOfRootNames(t *testing.T) {
	out, err := exec.Command("go", "doc", "-short", ".").Output()
	if err != nil {
		t.Fatalf("go doc -short .: %v", err)
	}
	entries := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(entries) > rootDocBudget {
		t.Errorf("go doc -short . lists %d entries, want at most %d:\n%s", len(entries), rootDocBudget, out)
	}
}

func TestTheRootPackageExportsNoMoreThanItsBudgetOfNames(t *testing.T) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var names []string
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						if spec.Name.IsExported() {
							names = append(names, spec.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	if len(names) == 0 || len(names) > rootNameBudget {
		t.Errorf("package heddle exports %d package-level names, want 1 to %d: %s", len(names), rootNameBudget, strings.Join(names, " "))
	}
}

func TestEveryConfigurationErrorMatchesErrConfig(t *testing.T) {
	_, rulesErr := router.ParseRules([]byte("tier_overrides: [1, 2]\n"))
	_, outputErr := worker.New(membus.New(), "w", func(context.Context, flowIn) (int, error) { return 0, nil }, worker.Config{})
	for name, err := range map[string]error{
		"ValidateWorkerType of an empty type":      heddle.ValidateWorkerType(""),
		"ValidateWorkerType of a type with spaces": heddle.ValidateWorkerType("two words"),
		"router rules that do not parse":           rulesErr,
		"a typed worker whose output is no object": outputErr,
	} {
		if !errors.Is(err, heddle.ErrConfig) {
			t.Errorf("%s: %v, want an error matching heddle.ErrConfig", name, err)
		}
	}
}
