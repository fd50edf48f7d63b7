// Package examples holds no code of its own: its test keeps the Go code
// shown in README.md and docs/ identical to code of the examples, which
// go vet and go test compile and run.
package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// goBlock is a fenced ```go block of a Markdown file.
type goBlock struct {
	file string
	line int // of the opening fence
	code string
}

// goBlocks returns the ```go blocks of the Markdown file at path.
func goBlocks(t *testing.T, path string) []goBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []goBlock
	var cur *goBlock
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &goBlock{file: path, line: i + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: a ```go block is never closed", path, cur.line)
	}
	return blocks
}

// exampleSources returns the text of every Go file under the examples
// directory, tests included.
func exampleSources(t *testing.T) map[string]string {
	t.Helper()
	sources := map[string]string{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		data, err := os.ReadFile(path)
		sources[path] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sources
}

// indent prefixes every non-empty line of code with n tabs, as gofmt
// indents a block n levels deep.
func indent(code string, n int) string {
	lines := strings.SplitAfter(code, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = strings.Repeat("\t", n) + l
		}
	}
	return strings.Join(lines, "")
}

func TestEveryGoBlockOfTheREADMEAndDocsIsCodeOfAnExample(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := exampleSources(t)
	for _, md := range append([]string{"../README.md"}, docs...) {
		for _, b := range goBlocks(t, md) {
			found := false
			for _, src := range sources {
				for depth := 0; depth <= 3 && !found; depth++ {
					found = strings.Contains(src, indent(b.code, depth))
				}
			}
			if !found {
				t.Errorf("%s:%d: this ```go block is not code of any example, so nothing proves that it compiles; "+
					"copy it from a file under examples/ (a test file will do) or put it there:\n%s", b.file, b.line, b.code)
			}
		}
	}
}

func TestTheREADMESaysHowToGetTheModule(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const want = "go get github.com/heddle-go/heddle@latest"
	if !strings.Contains(string(data), want) {
		t.Errorf("README.md lacks %q", want)
	}
}
