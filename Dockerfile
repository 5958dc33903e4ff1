# syntax=docker/dockerfile:1
# callrec: build with the full toolchain, run on a slim image with production dependencies only.
#
# Node 26 is the Active LTS line (since 2026-10-28), the one CI runs the tests on.
# better-sqlite3 13 ships N-API prebuilds in its package; @discordjs/opus 0.10 is an N-API (v3)
# addon built from source when no prebuilt binary is reachable, which is why the build stage has a
# compiler. Not verified here: no container engine runs on the development machine.
ARG NODE_IMAGE=node:26-trixie-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 and @discordjs/opus compile from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
# `npm run build`: what runs (tsconfig.build.json: server, workers, bench; no tests or fixtures)
# into dist/, and the dashboard (vite) into dist/web.
RUN npm run build \
 && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
# MALLOC_ARENA_MAX: glibc gives each thread that allocates (libuv's pool writes every spool)
# an arena of its own and hands little back; with 2, RSS at a constant load stayed flat
# (`npm run soak`: +0.9 MiB/min over 10 min with 50 calls, against +3.3 MiB/min without).
ENV NODE_ENV=production \
    DATA_DIR=/data \
    PORT=8080 \
    MALLOC_ARENA_MAX=2
WORKDIR /app
# node_modules comes from the build stage: native addons were compiled there for this same base image.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
# The image's own unprivileged user (uid 1000); Kubernetes' runAsNonRoot checks the number.
USER 1000:1000
VOLUME ["/data"]
EXPOSE 8080
# Liveness (`/healthz`), not readiness: a draining node answers `/readyz` 503 for up to
# DRAIN_TIMEOUT_SECONDS and must not be marked unhealthy (and restarted) meanwhile.
# `callrec worker` answers on WORKER_PORT instead: docker-compose.yml gives it its own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the drain (new streams refused, live calls run to their end); give the
# container DRAIN_TIMEOUT_SECONDS plus a minute before it is killed (see README "Operations").
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
