FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
# install builds (prepare: schema validators + TypeScript), then drops the build-only packages
RUN npm install --no-audit --no-fund && npm prune --omit=dev
ENV NODE_ENV=production PORT=8080
EXPOSE 8080 2575 8081
USER node
CMD ["node", "dist/src/main.js", "serve"]
