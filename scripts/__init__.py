"""Repository scripts (build_site, serve); a package so tests and bench import serve without path edits."""
