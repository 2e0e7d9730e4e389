package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"credbroker/broker"
	"credbroker/sources/dev"
	"credbroker/sources/serviceaccount"

	"github.com/urfave/cli/v2"
)

// credential is the source chosen for this process and why.
type credential struct {
	src       broker.Source
	kind      string // "dev" or "service-account"
	detail    string // e.g. the key file
	selection string // which flag or variable chose it
	projectID string
}

// flagReader is the part of *cli.Context that credential selection reads,
// so the demo can force the dev source.
type flagReader interface {
	Bool(name string) bool
	String(name string) string
	IsSet(name string) bool
}

// selectCredential picks the credential source: an explicit flag first,
// then GOOGLE_APPLICATION_CREDENTIALS when it names a service-account key.
// With nothing usable it fails with a message that lists every way to
// give one.
func selectCredential(c flagReader, log *slog.Logger) (*credential, error) {
	if c.Bool("dev") && c.IsSet("service-account-json") {
		return nil, usageError("give either --dev or --service-account-json, not both")
	}
	if c.Bool("dev") {
		src, err := dev.New(dev.Options{})
		if err != nil {
			return nil, brokerError(err)
		}
		log.Warn(src.Warning())
		return &credential{src: src, kind: "dev", detail: src.Email(), selection: "--dev"}, nil
	}
	if path := c.String("service-account-json"); path != "" {
		return serviceAccountCredential(path, "--service-account-json")
	}
	if path := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS"); path != "" {
		kind, err := keyFileType(path)
		if err == nil && kind == "service_account" {
			return serviceAccountCredential(path, "GOOGLE_APPLICATION_CREDENTIALS")
		}
		if err == nil {
			err = fmt.Errorf("its type is %q, and only service_account keys are supported", kind)
		}
		return nil, noCredential(fmt.Sprintf("GOOGLE_APPLICATION_CREDENTIALS=%s is not usable: %v", path, err))
	}
	return nil, noCredential("")
}

func serviceAccountCredential(path, selection string) (*credential, error) {
	src, err := serviceaccount.FromFile(path, serviceaccount.Options{})
	if err != nil {
		return nil, brokerError(err)
	}
	return &credential{src: src, kind: "service-account", detail: path, selection: selection, projectID: src.ProjectID()}, nil
}

// keyFileType reads only the "type" field of a Google credential file.
func keyFileType(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", errors.New("it is not a JSON credential file")
	}
	return f.Type, nil
}

func noCredential(reason string) error {
	var b strings.Builder
	if reason != "" {
		b.WriteString(reason + "\n")
	}
	b.WriteString("no credential to serve; give one of:\n" +
		"  --service-account-json PATH            a service-account key file\n" +
		"  GOOGLE_APPLICATION_CREDENTIALS=PATH    the same, from the environment\n" +
		"  --dev                                  the embedded offline dev identity (not Google tokens)")
	return cli.Exit(b.String(), exitError)
}

// newBroker builds the process's token core serving cred under ids.
func newBroker(cred *credential, ids []string, def string, log *slog.Logger) (*broker.Broker, error) {
	b := broker.New(broker.Options{Logger: log})
	for _, id := range ids {
		if err := b.AddAccount(id, cred.src); err != nil {
			b.Close()
			return nil, err
		}
	}
	if err := b.SetDefault(def); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}
