// Limits on configuration input, so that any file — however large, deep or self-referential —
// is read in bounded time and memory. Documented in README ("Limits and hostile input").

/** settings.sh, nat.conf (and nat.sh) larger than this are refused before parsing. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** Longest value a settings.sh assignment may have after expansion (characters). */
export const MAX_VALUE_CHARS = 64 * 1024;

/** All values of one settings file together, after expansion (characters). */
export const MAX_EXPANDED_TOTAL_CHARS = 4 * 1024 * 1024;

/** How deeply ${NAME:-...} may nest inside one another. */
export const MAX_EXPANSION_DEPTH = 16;

/** Problems reported per file; the rest are counted. A file that is not a settings file at all
 * (a secret mounted by mistake) must not be printed line by line. */
export const MAX_ISSUES_PER_FILE = 20;

/** Characters of offending text an error message quotes. */
export const MAX_EXCERPT_CHARS = 24;
