package launch

import (
	"os/exec"
	"strings"
	"testing"
)

// HOME, USER and LOGNAME become the user's; the rest stays.
func TestCredentialEnv(t *testing.T) {
	c := &Credential{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice"}
	env := c.env([]string{"HOME=/root", "USER=root", "PATH=/bin", "TERM=xterm"})
	cmd := exec.Command("/bin/true")
	cmd.Env = env
	got := strings.Join(cmd.Environ(), " ")
	for _, want := range []string{"HOME=/home/alice", "USER=alice", "LOGNAME=alice", "PATH=/bin", "TERM=xterm"} {
		if !strings.Contains(got, want) {
			t.Errorf("environment %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "HOME=/root") || strings.Contains(got, "USER=root") {
		t.Errorf("environment %q keeps root's", got)
	}
}
