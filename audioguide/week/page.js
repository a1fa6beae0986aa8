(function () {
  'use strict';
  var body = document.body;
  var week = body.dataset.week;
  var articles = Array.prototype.slice.call(document.querySelectorAll('article'));
  var audios = articles.map(function (a) { return a.querySelector('audio'); });

  function store(name, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(name);
      if (value === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, value);
    } catch (e) { /* storage off (private mode): nothing is remembered */ }
    return null;
  }
  function key(article, what) { return 'audioguide:' + week + '/' + article.dataset.session + ':' + what; }
  function clock(s) {
    s = Math.floor(s);
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    var mm = (h ? (m < 10 ? '0' : '') : '') + m;
    return (h ? h + ':' : '') + mm + ':' + (sec < 10 ? '0' : '') + sec;
  }
  function localDate(d) {
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate());
  }

  // Today first: its day opened and moved to the top; before the week, its first day;
  // after it, its last.
  var days = Array.prototype.slice.call(document.querySelectorAll('details.day'));
  var today = localDate(new Date());
  var chosen = days.filter(function (d) { return d.dataset.date === today; })[0];
  if (chosen) chosen.classList.add('today');
  else if (days.length && today < days[0].dataset.date) chosen = days[0];
  else chosen = days[days.length - 1];
  days.forEach(function (d) { d.open = d === chosen; });
  if (chosen) {
    chosen.parentNode.insertBefore(chosen, chosen.parentNode.firstChild);
    var first = chosen.querySelector('article');
    var pending = Array.prototype.slice.call(chosen.querySelectorAll('article'))
      .filter(function (a) { return !store(key(a, 'done')); });
    (pending[0] || first).classList.add('next');
  }

  // Where each session was left, and which were heard to the end, kept in this browser.
  function showState(article) {
    var at = parseFloat(store(key(article, 'at')) || '0');
    var resume = article.querySelector('p.resume');
    resume.hidden = !(at > 5);
    resume.textContent = at > 5 ? 'Resumes at ' + clock(at) : '';
    article.querySelector('p.done').hidden = !store(key(article, 'done'));
  }
  articles.forEach(showState);

  function chapters(article) {
    return Array.prototype.slice.call(article.querySelectorAll('ol.chapters button'))
      .map(function (b) { return parseFloat(b.dataset.at); });
  }
  function seek(audio, at) {
    if (audio.readyState >= 1) audio.currentTime = at;
    else audio.dataset.seek = String(at);
  }
  var lastSaved = {};

  audios.forEach(function (audio, index) {
    var article = articles[index];
    audio.addEventListener('loadedmetadata', function () {
      var at = audio.dataset.seek !== undefined ? parseFloat(audio.dataset.seek)
        : parseFloat(store(key(article, 'at')) || '0');
      delete audio.dataset.seek;
      if (at > 0 && at < audio.duration - 1) audio.currentTime = at;
    });
    audio.addEventListener('play', function () {
      audios.forEach(function (other) { if (other !== audio && !other.paused) other.pause(); });
      mediaSession(article, audio);
    });
    audio.addEventListener('timeupdate', function () {
      var now = Date.now();
      if (audio.currentTime > 0 && now - (lastSaved[index] || 0) > 2000) {
        lastSaved[index] = now;
        store(key(article, 'at'), audio.currentTime.toFixed(1));
      }
      if ('mediaSession' in navigator && navigator.mediaSession.setPositionState &&
          isFinite(audio.duration)) {
        try {
          navigator.mediaSession.setPositionState({duration: audio.duration,
            playbackRate: audio.playbackRate, position: Math.min(audio.currentTime, audio.duration)});
        } catch (e) { /* a position the platform refuses is not shown */ }
      }
    });
    audio.addEventListener('pause', function () {
      if (!audio.ended && audio.currentTime > 0) store(key(article, 'at'), audio.currentTime.toFixed(1));
      showState(article);
    });
    audio.addEventListener('ended', function () {
      store(key(article, 'at'), null);
      store(key(article, 'done'), '1');
      showState(article);
      var log = article.querySelector('details.log');
      if (log) log.open = true;
    });
  });

  document.querySelectorAll('button[data-at]').forEach(function (b) {
    b.addEventListener('click', function () {
      var audio = b.closest('article').querySelector('audio');
      seek(audio, parseFloat(b.dataset.at));
      audio.play();
    });
  });

  // The lock screen: the session's title, the week, its cover, and chapter skips.
  function mediaSession(article, audio) {
    if (!('mediaSession' in navigator) || typeof MediaMetadata === 'undefined') return;
    var icon = document.querySelector('header img');
    navigator.mediaSession.metadata = new MediaMetadata({
      title: article.dataset.title, artist: body.dataset.title, album: 'audioguide',
      artwork: [{src: icon.src, sizes: '192x192', type: 'image/png'},
                {src: body.dataset.cover, sizes: '1400x1400', type: 'image/png'}]});
    var starts = chapters(article);
    var handlers = {
      play: function () { audio.play(); },
      pause: function () { audio.pause(); },
      seekbackward: function (d) { audio.currentTime = Math.max(0, audio.currentTime - ((d && d.seekOffset) || 15)); },
      seekforward: function (d) { audio.currentTime = Math.min(audio.duration, audio.currentTime + ((d && d.seekOffset) || 15)); },
      seekto: function (d) { audio.currentTime = d.seekTime; },
      previoustrack: function () {
        var before = starts.filter(function (s) { return s < audio.currentTime - 3; });
        audio.currentTime = before.length ? before[before.length - 1] : 0;
      },
      nexttrack: function () {
        var after = starts.filter(function (s) { return s > audio.currentTime + 0.5; });
        if (after.length) audio.currentTime = after[0];
      }
    };
    Object.keys(handlers).forEach(function (action) {
      try { navigator.mediaSession.setActionHandler(action, handlers[action]); }
      catch (e) { /* an action this browser does not know */ }
    });
  }

  // An element with attributes (``text``: its text, never markup) and children, for the
  // log's and the form's scripts.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  window.audioguidePage = {articles: articles, store: store, key: key, el: el};
})();
