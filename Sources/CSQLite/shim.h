#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro around a cast Swift cannot import: SQLite copies the bound bytes at once.
static inline sqlite3_destructor_type attend_sqlite_transient(void) { return SQLITE_TRANSIENT; }
