// Package safetext makes text that came from elsewhere (an upstream's
// error description, a response body) fit to put into one of our own
// error messages and log lines: printable, on one line, and bounded, so a
// hostile or broken upstream cannot forge log lines or flood them.
package safetext
