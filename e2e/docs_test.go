package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
)

// TestNewcomerDocs checks the documents a newcomer looks for: they exist
// and the README links them; troubleshooting.md explains every error
// reason of the API (a reason added without an explanation fails here);
// and the SDK docs no longer call consumer groups future work or name the
// ExplicitPartition that does not exist.
func TestNewcomerDocs(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme := read("README.md")
	for _, doc := range []string{"docs/local-cluster.md", "docs/s3.md", "docs/troubleshooting.md", "docs/upgrading.md", "docs/metrics.md"} {
		read(doc)
		if !strings.Contains(readme, "("+doc+")") {
			t.Errorf("README.md does not link %s", doc)
		}
	}
	trouble := read("docs/troubleshooting.md")
	for v, name := range stratav1.Reason_name {
		if v != 0 && !strings.Contains(trouble, "| `"+name+"` |") {
			t.Errorf("docs/troubleshooting.md does not explain reason %s", name)
		}
	}
	s3 := read("docs/s3.md")
	for _, action := range []string{"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"} {
		if !strings.Contains(s3, action) {
			t.Errorf("docs/s3.md's IAM policy lacks %s", action)
		}
	}
	if c := read("docs/client.md"); strings.Contains(c, "come later") || !strings.Contains(c, "NewGroupConsumer") {
		t.Errorf("docs/client.md still calls consumer groups future work")
	}
	for _, f := range []string{"pkg/client/record.go", "docs/client.md"} {
		if strings.Contains(read(f), "ExplicitPartition") {
			t.Errorf("%s names ExplicitPartition, which does not exist", f)
		}
	}
}
