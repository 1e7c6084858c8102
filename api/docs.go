package api

import (
	"embed"
	"net/http"
)

// docsAssets is the /docs page: an HTML shell, its start script and the
// Redoc bundle pinned by api/docsui/package-lock.json. They are embedded
// in the binary, so the page renders on a machine without internet;
// scripts/npm-check.sh checks the committed bundle equals the lock's package.
//
//go:embed docsui/docs.html docsui/docs.js docsui/redoc.standalone.js
var docsAssets embed.FS

// docsPolicy lets the page load nothing but its own origin. Redoc injects
// its styles (hence 'unsafe-inline' for styles only) and runs its search
// index in a worker made from a blob.
const docsPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// registerDocs serves the reference page at /docs and its assets under
// /docs/assets/.
func registerDocs(mux *http.ServeMux) {
	serve := func(name, contentType string) http.HandlerFunc {
		body, err := docsAssets.ReadFile("docsui/" + name)
		if err != nil {
			panic("api: embedded docs asset " + name + " is missing: " + err.Error())
		}
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", contentType)
			h.Set("Content-Security-Policy", docsPolicy)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(body)
		}
	}
	mux.Handle("GET /docs", serve("docs.html", "text/html; charset=utf-8"))
	mux.Handle("GET /docs/assets/docs.js", serve("docs.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /docs/assets/redoc.standalone.js", serve("redoc.standalone.js", "text/javascript; charset=utf-8"))
}
