//! Loom model checks of the admission protocol live in `tests/`; run them
//! with `scripts/loom.sh` (they need `--cfg mcp_session_core_loom`).
