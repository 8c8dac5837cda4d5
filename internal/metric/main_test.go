package metric_test

import (
	"testing"

	"github.com/strata-mq/strata/internal/testenv"
)

// TestMain fails the package when a test leaves a goroutine running.
func TestMain(m *testing.M) { testenv.Main(m, nil) }
