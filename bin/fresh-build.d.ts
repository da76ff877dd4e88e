/** Types of bin/fresh-build.js (plain JavaScript: it runs before anything is compiled). */
export declare function cacheDir(root: string): string;
export declare function freshBuild(root: string, entry: string): string;
/** The folders linked beside the compiled code: migrations and every feature's public/ folder. */
export declare function assetDirs(root: string): string[];
