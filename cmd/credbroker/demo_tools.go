package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"credbroker/broker"
	"credbroker/session"
	"credbroker/shims/docker"
	"credbroker/shims/firebase"
)

// demoGitHost is the host the demo asks git's helper about.
const demoGitHost = "chromium.googlesource.com"

// callGit runs the credential helper the session configured for a Google
// source host the way git does: through the shell, with the operation
// appended and the request on stdin.
func callGit(ctx context.Context, env []string) (string, broker.Token, error) {
	e := session.Env(env)
	n, _ := e.Get("GIT_CONFIG_COUNT")
	count, _ := strconv.Atoi(n)
	helper := ""
	for i := range count {
		k, _ := e.Get("GIT_CONFIG_KEY_" + strconv.Itoa(i))
		v, _ := e.Get("GIT_CONFIG_VALUE_" + strconv.Itoa(i))
		if k == "credential.https://*.googlesource.com.helper" && v != "" {
			helper = v
		}
	}
	shell, ok := strings.CutPrefix(helper, "!")
	if !ok {
		return "", broker.Token{}, errors.New("no credential helper configured for googlesource.com")
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", shell+" get")
	cmd.Env = env
	cmd.Stdin = strings.NewReader("protocol=https\nhost=" + demoGitHost + "\n\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", broker.Token{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var user string
	var tok broker.Token
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "username":
			user = v
		case "password":
			tok.Value = v
		case "password_expiry_utc":
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
				tok.Expiry = time.Unix(sec, 0)
			}
		}
	}
	if tok.Value == "" {
		return "", broker.Token{}, errors.New("the helper gave no password")
	}
	return user, tok, nil
}

// callDocker runs docker-credential-credbroker as docker does: found on
// the child's PATH, "get" as its argument, the registry on stdin.
func callDocker(ctx context.Context, env []string) (broker.Token, error) {
	path, _ := session.Env(env).Get("PATH")
	bin := ""
	for _, dir := range filepath.SplitList(path) {
		if p := filepath.Join(dir, docker.BinaryName); isExecutable(p) {
			bin = p
			break
		}
	}
	if bin == "" {
		return broker.Token{}, errors.New(docker.BinaryName + " is not on the child's PATH")
	}
	cmd := exec.CommandContext(ctx, bin, "get")
	cmd.Args[0] = docker.BinaryName
	cmd.Env = env
	cmd.Stdin = strings.NewReader("gcr.io")
	out, err := cmd.Output()
	if err != nil {
		return broker.Token{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	var creds struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal(out, &creds); err != nil {
		return broker.Token{}, err
	}
	if creds.Username != docker.Username || creds.Secret == "" {
		return broker.Token{}, fmt.Errorf("unexpected answer for user %q", creds.Username)
	}
	return broker.Token{Value: creds.Secret}, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// callFirebase refreshes as firebase-tools does: FIREBASE_TOKEN as the
// refresh token, posted as multipart/form-data to FIREBASE_TOKEN_URL.
func callFirebase(ctx context.Context, env []string) (broker.Token, error) {
	e := session.Env(env)
	secret, _ := e.Get(firebase.EnvToken)
	base, _ := e.Get(firebase.EnvTokenURL)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, kv := range [][2]string{{"refresh_token", secret}, {"client_id", "demo"}, {"client_secret", "demo"},
		{"grant_type", "refresh_token"}, {"scope", "https://www.googleapis.com/auth/cloud-platform"}} {
		w.WriteField(kv[0], kv[1])
	}
	w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+firebase.TokenPath, &body)
	if err != nil {
		return broker.Token{}, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return broker.Token{}, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return broker.Token{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return broker.Token{}, err
	}
	return broker.Token{Value: t.AccessToken, Expiry: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)}, nil
}
