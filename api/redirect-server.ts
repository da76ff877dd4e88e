import http from 'node:http';

/**
 * The plain-HTTP listener: every request gets a 301 to the same path on HTTPS, sent as soon as
 * the request head is parsed. The body is never read: the socket is closed once the response is
 * out, so a client streaming a large body over cleartext is cut off at once. The target host is
 * the configured public hostname, never the request's Host header (no open redirect).
 */
export function createHttpsRedirectServer(opts: {
  publicHostname: string;
  httpsPort: number;
}): http.Server {
  const origin = `https://${opts.publicHostname}${opts.httpsPort === 443 ? '' : `:${opts.httpsPort}`}`;
  const redirect = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url && req.url.startsWith('/') ? req.url : '/';
    res.writeHead(301, {
      location: `${origin}${url}`,
      connection: 'close',
      'content-length': '0',
      'cache-control': 'no-store',
    });
    res.end();
    res.on('finish', () => req.socket.destroy());
  };
  // Small header limit and short timeouts: this listener serves nothing but redirects.
  const server = http.createServer(
    { maxHeaderSize: 16 * 1024, requestTimeout: 10_000, headersTimeout: 10_000 },
    redirect,
  );
  // Expect: 100-continue gets the 301 instead of "100 Continue", so the client never sends the body.
  server.on('checkContinue', redirect);
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}
