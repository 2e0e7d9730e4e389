package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"credbroker/daemon"
)

func TestWriteShellEnv(t *testing.T) {
	out := &daemon.Created{
		Info: daemon.Info{ID: "at_ABCDEFGHIJ", Status: "issued", Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Set: []daemon.EnvVar{
			{Name: "PLAIN", Value: "/tmp/x"},
			{Name: "QUOTED", Value: `it's "$HOME" and $(id) ` + "`x`\n\\"},
			{Name: "EMPTY", Value: ""},
		},
		Unset: []string{"NO_GCE_CHECK"},
	}
	var b bytes.Buffer
	writeShellEnv(&b, out)
	wantPrefix := "export PLAIN='/tmp/x';\n" +
		"export QUOTED='it'\\''s \"$HOME\" and $(id) `x`\n\\';\n" +
		"export EMPTY='';\n" +
		"unset NO_GCE_CHECK;\n" +
		"# credbroker session at_ABCDEFGHIJ issued until "
	if !strings.HasPrefix(b.String(), wantPrefix) {
		t.Fatalf("got:\n%s\nwant prefix:\n%s", b.String(), wantPrefix)
	}

	// What a shell makes of it is exactly the values.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := b.String() + `printf '%s\0' "$PLAIN" "$QUOTED" "$EMPTY" "${NO_GCE_CHECK-unset}"`
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = []string{"NO_GCE_CHECK=1", "PATH=/usr/bin:/bin"}
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "/tmp/x\x00" + out.Set[1].Value + "\x00\x00unset\x00"
	if string(got) != want {
		t.Errorf("shell read %q, want %q", got, want)
	}
}
