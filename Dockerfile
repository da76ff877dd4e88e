# syntax=docker/dockerfile:1
# Production image of the Thamani gateway: broker, ingest, API and dashboards in one process.
# Secrets (DATABASE_URL, CA passphrase) come at run time through *_FILE secrets, never the image.
# Node 24, an LTS line supported until April 2028 (Node 20 reached its end of life in April 2026; runtime
# dependencies need Node >= 22). Both stages use the same image so native parts match.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts=false
COPY . .
RUN npm run build && cp -r db/migrations dist/db/ && cp -r dashboards/public dist/dashboards/ && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production THAMANI_ENV=production THAMANI_DATA_DIR=/var/lib/thamani LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
RUN mkdir -p /var/lib/thamani && chown node:node /var/lib/thamani
USER node
VOLUME ["/var/lib/thamani"]
EXPOSE 8883 8884 8443 8080
ENTRYPOINT ["node", "--max-semi-space-size=64", "bin/thamani.js"]
CMD ["start"]
