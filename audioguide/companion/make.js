(function () {
  'use strict';
  // "Make a session": a form from the option schema (GET api/form), a short queue of
  // builds with progress and the time left (GET api/jobs), each cancellable.
  if (!/^https?:$/.test(location.protocol) || !window.fetch) return;

  var el = window.audioguidePage.el;
  function field(label, input, id) {
    input.id = id;
    return el('p', {'class': 'field'}, [el('label', {'for': id, text: label}), input]);
  }
  function post(path, data) {
    return fetch(path, {method: 'POST', credentials: 'same-origin',
                        headers: {'Content-Type': 'application/json',
                                  'X-Audioguide-Token': window.audioguideToken},
                        body: JSON.stringify(data)})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || 'not accepted');
          return body;
        });
      });
  }
  function clock(s) { return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2); }

  function build(schema) {
    var kinds = schema.kinds;
    var kind = el('select', {name: 'kind'}, kinds.map(function (k) {
      return el('option', {value: k.name, text: k.title});
    }));
    var minutes = el('input', {type: 'number', name: 'minutes', step: '0.5', required: ''});
    var feelings = el('input', {type: 'text', name: 'feelings', autocomplete: 'off',
                                placeholder: 'calm, tired'});
    var focus = el('select', {name: 'focus', multiple: '', size: '4'}, schema.focus.map(
      function (r) { return el('option', {value: r, text: r}); }));
    var intention = el('input', {type: 'text', name: 'intention',
                                 maxlength: String(schema.intention_max)});
    var safe = el('input', {type: 'text', name: 'safe_person',
                            maxlength: String(schema.safe_person_max)});
    var walking = el('input', {type: 'checkbox', name: 'walking'});
    var ambience = el('select', {name: 'ambience'}, schema.ambience.map(function (a) {
      return el('option', {value: a, text: a}); }));
    var voice = el('input', {type: 'text', name: 'voice', maxlength: String(schema.voice_max),
                             placeholder: 'the default voice'});
    var rows = {
      minutes: field('Minutes', minutes, 'make-minutes'),
      feelings: field('Feelings (words, separated by commas)', feelings, 'make-feelings'),
      focus: field('Body regions to dwell on', focus, 'make-focus'),
      intention: field('An intention (one sentence)', intention, 'make-intention'),
      safe_person: field('Someone you feel safe with', safe, 'make-safe'),
      walking: el('p', {'class': 'field'}, [el('label', {}, [walking,
        document.createTextNode(' For a walk (eyes open)')])])
    };
    var status = el('p', {role: 'status', 'class': 'muted'});
    var form = el('form', {'class': 'log make'}, [
      field('Kind', kind, 'make-kind'), rows.minutes, rows.feelings, rows.focus,
      rows.intention, rows.safe_person, rows.walking,
      field('Background', ambience, 'make-ambience'), field('Voice', voice, 'make-voice'),
      el('button', {type: 'submit', text: 'Make it'}), status]);
    function chosen() { return kinds.filter(function (k) { return k.name === kind.value; })[0]; }
    function shape() {
      var k = chosen();
      minutes.min = String(k.min);
      minutes.max = String(k.max);
      if (!minutes.value || +minutes.value < k.min || +minutes.value > k.max) minutes.value = String(Math.max(k.min, 10));
      ['feelings', 'focus', 'intention', 'safe_person'].forEach(function (name) {
        rows[name].hidden = k.uses.indexOf(name) < 0;
      });
      rows.walking.hidden = !k.walking;
    }
    kind.addEventListener('change', shape);
    shape();
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var k = chosen();
      var data = {kind: k.name, minutes: parseFloat(minutes.value), ambience: ambience.value};
      if (!rows.feelings.hidden && feelings.value.trim()) data.feelings = feelings.value;
      var regions = Array.prototype.slice.call(focus.selectedOptions).map(function (o) { return o.value; });
      if (!rows.focus.hidden && regions.length) data.focus = regions;
      if (!rows.intention.hidden && intention.value.trim()) data.intention = intention.value;
      if (!rows.safe_person.hidden && safe.value.trim()) data.safe_person = safe.value;
      if (!rows.walking.hidden && walking.checked) data.walking = true;
      if (voice.value.trim()) data.voice = voice.value.trim();
      status.className = 'muted';
      status.textContent = 'Sending…';
      post('api/make', data).then(function () {
        status.textContent = 'Queued.';
        poll();
      }).catch(function (error) {
        status.className = 'error';
        status.textContent = 'Not made: ' + error.message;
      });
    });
    return form;
  }

  var jobsList = el('ul', {'class': 'jobs'});
  var timer = null;
  var seen = {};
  function show(jobs) {
    jobsList.textContent = '';
    var busy = false;
    jobs.forEach(function (job) {
      var text = job.kind + ', ' + job.minutes + ' min: ';
      if (job.state === 'waiting') text += 'waiting, about ' + clock(job.eta_s) + ' to go';
      else if (job.state === 'building') text += (job.stage || 'starting') +
        (job.total > 1 ? ' ' + job.done + '/' + job.total : '') + ', about ' + clock(job.eta_s) + ' left';
      else if (job.state === 'failed') text += 'not made: ' + job.error;
      else text += job.state;
      var item = el('li', {'data-state': job.state, text: text});
      if (job.state === 'waiting' || job.state === 'building') {
        busy = true;
        var stop = el('button', {type: 'button', text: 'Cancel'});
        stop.addEventListener('click', function () { post('api/cancel', {id: job.id}).then(poll); });
        item.appendChild(document.createTextNode(' '));
        item.appendChild(stop);
      }
      if (job.state === 'done' && (seen[job.id] === 'building' || seen[job.id] === 'waiting')) {
        setTimeout(function () { location.reload(); }, 500);  // it is on the page now
      }
      seen[job.id] = job.state;
      jobsList.appendChild(item);
    });
    clearTimeout(timer);
    if (busy) timer = setTimeout(poll, 1500);
  }
  function poll() {
    fetch('api/jobs', {credentials: 'same-origin'})
      .then(function (response) { return response.ok ? response.json() : {jobs: []}; })
      .then(function (body) { show(body.jobs); })
      .catch(function () { clearTimeout(timer); timer = setTimeout(poll, 5000); });
  }

  document.addEventListener('audioguide:log-open', function () {
    fetch('api/form', {credentials: 'same-origin'})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (schema) {
        if (!schema) return;
        var box = el('details', {'class': 'make'}, [el('summary', {text: 'Make a session'}),
                                                    build(schema), jobsList]);
        var main = document.querySelector('main');
        main.insertBefore(box, main.firstChild);
        poll();
      });
  });
})();
