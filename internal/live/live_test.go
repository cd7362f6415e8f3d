package live

import (
	"testing"

	"github.com/mmtrace/mmtrace/internal/loader"
)

// The advice on lost records is for the ring this run had and what it
// received.
func TestLostAdvice(t *testing.T) {
	s := &Source{opts: Options{Loader: loader.Config{RingSize: 1 << 20}}, received: 1000, recBytes: 1000 * 120}
	want := ": 50% of 2000; --ring-size 2MiB would have held them"
	if got := s.LostAdvice(1000); got != want {
		t.Errorf("LostAdvice(1000) = %q, want %q", got, want)
	}
}
