// Jornada Web Push for a shop's pages. Include it, then call:
//   jornadaPush.subscribe({ writeKey: "wk_…", userId: "…" })   // or anonymousId
// It registers the service worker, asks permission, subscribes with the
// workspace's VAPID key and sends the subscription to Jornada.
// A service worker must come from the page's own origin: put one line,
//   importScripts("https://JORNADA/push/sw.js");
// in /jornada-sw.js on the shop's site (or pass { serviceWorker: "/other.js" }).
(function () {
  const script = document.currentScript;
  const base = script ? new URL(script.src).origin : "";

  function b64ToBytes(text) {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function same(a, b) {
    const x = new Uint8Array(a || []);
    return x.length === b.length && x.every((v, i) => v === b[i]);
  }

  async function call(method, path, writeKey, body) {
    const response = await fetch(base + path, {
      method: method,
      headers: { "Content-Type": "application/json", Authorization: "Basic " + btoa(writeKey + ":") },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error("Jornada push: " + response.status + " " + (await response.text()));
    return response.json();
  }

  // A registration's worker installs after register() resolves; subscribing needs it active.
  function activated(registration) {
    if (registration.active) return Promise.resolve(registration);
    const worker = registration.installing || registration.waiting;
    return new Promise((resolve, reject) => {
      worker.addEventListener("statechange", () => {
        if (worker.state === "activated") resolve(registration);
        if (worker.state === "redundant") reject(new Error("Jornada push: the service worker failed to install"));
      });
    });
  }

  async function subscribe(options) {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) return null;
    const worker = options.serviceWorker || "/jornada-sw.js";
    const registration = await activated(await navigator.serviceWorker.register(worker));
    if ((await Notification.requestPermission()) !== "granted") return null;
    const { publicKey } = await call("GET", "/v1/push/key", options.writeKey);
    const key = b64ToBytes(publicKey);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !same(subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe(); // the workspace's key was rotated
      subscription = null;
    }
    subscription = subscription || (await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: key,
    }));
    const who = options.userId ? { userId: options.userId } : { anonymousId: options.anonymousId };
    return call("POST", "/v1/push/subscriptions", options.writeKey, {
      ...who,
      subscription: subscription.toJSON(),
    });
  }

  async function unsubscribe(options) {
    const registration = await navigator.serviceWorker.getRegistration();
    const subscription = registration && (await registration.pushManager.getSubscription());
    if (!subscription) return null;
    await subscription.unsubscribe();
    return call("DELETE", "/v1/push/subscriptions", options.writeKey, { endpoint: subscription.endpoint });
  }

  window.jornadaPush = { subscribe: subscribe, unsubscribe: unsubscribe };
})();
