package charttest

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/testenv"
)

// TestImageBinariesStatic builds the commands as the Dockerfile does
// (CGO_ENABLED=0, -trimpath, stripped) and checks that each is a static
// executable — no program interpreter, no shared libraries — so that it
// runs on a distroless/static base. It also checks that the Dockerfile
// still says so and that every binary the chart runs is among them.
// Building the image itself needs Docker: make image.
func TestImageBinariesStatic(t *testing.T) {
	t.Parallel()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CGO_ENABLED=0", "-o /out/ ./cmd/...", "COPY --from=build /out/ /usr/local/bin/",
		"distroless/static-debian12:nonroot", "USER 65532:65532",
	} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out+"/", "./cmd/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	bins, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]bool{}
	for _, b := range bins {
		built[b.Name()] = true
		f, err := elf.Open(filepath.Join(out, b.Name()))
		if err != nil {
			t.Fatalf("%s: %v", b.Name(), err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v)", b.Name(), p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v", b.Name(), libs)
		}
		f.Close()
	}
	for _, want := range []string{"coordinator", "broker", "proxy", "strata"} {
		if !built[want] {
			t.Errorf("the image would lack /usr/local/bin/%s", want)
		}
	}
}
