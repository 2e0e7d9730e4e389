// Package chromiumtest starts a real headless Chromium (Debian's
// chromium package) for end-to-end tests of the browser front-end and
// the dashboard, and holds the few steps those tests share: waiting for
// a condition across page loads and saving screenshots as test
// artifacts.
//
// Chromium starts with a fresh profile and without the background
// networking, component updates and sync that would try to reach
// Google from a closed sandbox. Tests skip, saying why, when no Chromium
// is installed or under -short.
package chromiumtest
