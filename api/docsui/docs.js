// Renders the API document that this server serves; every asset of the
// page comes from the server itself (see api/docs.go).
Redoc.init("/openapi.json", {
  expandResponses: "200,201",
  hideDownloadButton: false,
  nativeScrollbars: true,
}, document.getElementById("redoc"));
