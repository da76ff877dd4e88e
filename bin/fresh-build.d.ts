/** Types of bin/fresh-build.js (plain JavaScript: it runs before anything is compiled). */
export declare function cacheDir(root: string): string;
export declare function freshBuild(root: string, entry: string): string;
