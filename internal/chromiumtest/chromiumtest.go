package chromiumtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ArtifactsEnv names a directory that gets a copy of every artifact, so
// CI can keep the screenshots of a run.
const ArtifactsEnv = "CREDBROKER_TEST_ARTIFACTS"

// Path finds Chromium on PATH, or skips the test.
func Path(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("a Chromium run takes seconds; skipped with -short")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (Debian package chromium)")
	return ""
}

// New starts a headless Chromium with a fresh profile and a window of
// the given size and returns a browser context for it. Everything ends
// with the test, and after two minutes at the most.
func New(t testing.TB, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// WaitJS waits, for 30 seconds at the most, until the JavaScript
// expression is true on the current page; an expression that throws
// counts as false. A poll does not survive a navigation (a click on a
// link, a form post and its redirect), so one cut short that way starts
// again on the new page.
func WaitJS(ctx context.Context, expr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf("(() => { try { return %s; } catch (e) { return false; } })()", expr),
			chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		// Give the new page a moment rather than spin on a dead one.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitText waits until the element sel has exactly the text want.
func WaitText(ctx context.Context, sel, want string) error {
	return WaitJS(ctx, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, want))
}

// Navigate loads url in the browser.
func Navigate(ctx context.Context, url string) error {
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

// Click clicks the element the CSS selector names.
func Click(ctx context.Context, sel string) error {
	return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
}

// PageText is the text of the current page, for failure messages.
func PageText(ctx context.Context) string {
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return text
}

// Screenshot is a PNG of the whole current page.
func Screenshot(ctx context.Context) ([]byte, error) {
	return chromedp.Run(ctx, chromedp.FullScreenshot(100))
}

// SaveArtifact writes a test artifact to t.ArtifactDir() (kept under
// -outputdir when go test runs with -artifacts) and, when ArtifactsEnv
// names a directory, a copy there.
func SaveArtifact(t *testing.T, name string, data []byte) {
	t.Helper()
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv(ArtifactsEnv); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("artifact: %s", path)
	}
}
