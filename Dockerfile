FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY profiles ./profiles
COPY mappings ./mappings
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV NODE_ENV=production PORT=8080
EXPOSE 8080 2575
USER node
CMD ["node", "dist/src/main.js", "serve"]
