package exitstatus

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	plain := errors.New("no such file")
	for _, c := range []struct {
		name  string
		err   error
		code  int
		print bool
	}{
		{"success", nil, OK, false},
		{"an error", plain, Failure, true},
		{"a command's status", Silent{42}, 42, false},
		{"wrapped silent", fmt.Errorf("run: %w", Silent{Usage}), Usage, false},
		{"a signal's", Error{130, plain}, 130, true},
		{"wrapped coded", fmt.Errorf("replay: %w", Error{143, plain}), 143, true},
	} {
		code, print := Of(c.err)
		if code != c.code || print != c.print {
			t.Errorf("%s: Of(%v) = %d, %v; want %d, %v", c.name, c.err, code, print, c.code, c.print)
		}
	}
	if err := (Error{130, plain}); !errors.Is(err, plain) || err.Error() != "no such file" {
		t.Errorf("Error hides its cause: %v", err)
	}
}
