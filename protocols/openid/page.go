package openid

import (
	"embed"
	"html/template"
	"net/http"
	"sync"
)

//go:embed static
var static embed.FS

// statusTmpl is parsed on first use, not at init: every credbroker
// command pays for each package's init at start.
var statusTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(static, "static/status.html"))
})

// StatusPage is the default Home: one page at "/" saying which mode runs
// and what /state answers, with sign-in and sign-out links, and its
// static files under /static/. A Home of the caller's own may mount it.
func (s *Server) StatusPage() http.Handler { return statusPage(s) }

func statusPage(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'")
		statusTmpl().Execute(w, struct {
			Mode  Mode
			Local bool
		}{s.mode, s.mode == Local})
	})
	mux.Handle("GET /static/", http.FileServerFS(static))
	return mux
}
